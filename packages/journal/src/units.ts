/**
 * journalctl -u: a unit name mangled as systemd's unit_name_mangle does
 * (a plain name becomes NAME.service; an absolute path NAME.mount, a /dev
 * path NAME.device; characters outside a unit name are \xNN-escaped; globs
 * stay globs), and the matches journalctl adds for a system unit
 * (add_matches_for_unit): the unit's own messages, its coredumps, what PID 1
 * says about it, what privileged daemons say about it, and for a slice
 * everything in the slice.
 */
import type { Matches } from './matches.ts';

const UNIT_TYPES = ['service', 'mount', 'swap', 'socket', 'target', 'device', 'automount', 'timer', 'path', 'slice', 'scope'];
const VALID_CHARS = /^[0-9A-Za-z:\-_.\\@]*$/;
const VALID_CHARS_GLOB = /^[0-9A-Za-z:\-_.\\@[\]!*?-]*$/;

export function isGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

function unitType(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const t = name.slice(dot + 1);
  return UNIT_TYPES.includes(t) ? t : undefined;
}

function isValidUnitName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  const type = unitType(name);
  if (!type) return false;
  const prefix = name.slice(0, name.lastIndexOf('.'));
  if (prefix.length === 0 || !VALID_CHARS.test(prefix)) return false;
  const at = prefix.indexOf('@');
  if (at === 0) return false;
  if (at > 0 && prefix.indexOf('@', at + 1) >= 0) return false;
  return true;
}

function escapeChar(c: string): string {
  return [...Buffer.from(c, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
}

/** unit_name_from_path: "/" → "-.mount"; "/var/log" → "var-log.mount". */
function fromPath(path: string, suffix: string): string {
  const trimmed = path.replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
  if (trimmed === '') return `-${suffix}`;
  let out = '';
  for (const [i, ch] of [...trimmed].entries()) {
    if (ch === '/') out += '-';
    else if ((i === 0 && ch === '.') || !/[0-9A-Za-z:_.]/.test(ch)) out += escapeChar(ch);
    else out += ch;
  }
  return out + suffix;
}

/** unit_name_mangle with UNIT_NAME_MANGLE_GLOB and the ".service" suffix. */
export function mangleUnitName(name: string): string {
  if (name === '') throw new Error('empty unit name');
  if (isValidUnitName(name)) return name;
  if (isGlob(name) && VALID_CHARS_GLOB.test(name)) return name;
  if (name.startsWith('/dev/') || name.startsWith('/sys/')) return fromPath(name, '.device');
  if (name.startsWith('/')) return fromPath(name, '.mount');
  let s = '';
  for (const ch of name) {
    if (ch === '/') s += '-';
    else if (!/[0-9A-Za-z:\-_.\\@[\]!*?]/.test(ch)) s += escapeChar(ch);
    else s += ch;
  }
  if (!isGlob(s) && !unitType(s)) s += '.service';
  return s;
}

/** add_matches_for_unit, for one (already mangled) system unit. */
export function addMatchesForUnit(m: Matches, unit: string): void {
  m.add(`_SYSTEMD_UNIT=${unit}`);
  m.addDisjunction();
  m.add('MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1');
  m.add('_UID=0');
  m.add(`COREDUMP_UNIT=${unit}`);
  m.addDisjunction();
  m.add('_PID=1');
  m.add(`UNIT=${unit}`);
  m.addDisjunction();
  m.add('_UID=0');
  m.add(`OBJECT_SYSTEMD_UNIT=${unit}`);
  if (unit.endsWith('.slice')) {
    m.addDisjunction();
    m.add(`_SYSTEMD_SLICE=${unit}`);
  }
}

/** The fields whose values a unit glob is matched against (journalctl's SYSTEM_UNITS). */
export const SYSTEM_UNIT_FIELDS = ['_SYSTEMD_UNIT', 'COREDUMP_UNIT', 'UNIT', 'OBJECT_SYSTEMD_UNIT', '_SYSTEMD_SLICE'];

/** fnmatch(pattern, s, FNM_NOESCAPE): *, ?, [...] with ! or ^ negation and ranges. */
export function fnmatch(pattern: string, s: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (x) => `\\${x}`)}]`;
      i = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, (x) => `\\${x}`);
  }
  return new RegExp(`${re}$`, 'u').test(s);
}
