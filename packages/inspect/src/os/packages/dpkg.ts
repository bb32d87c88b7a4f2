/**
 * dpkg's database of installed packages: /var/lib/dpkg/status, RFC 822-like
 * stanzas. A package counts as installed when its Status is "install ok
 * installed" (or half-configured/unpacked states dpkg still lists as present:
 * "hold ok installed" too). Versions split into epoch, upstream version and
 * Debian revision as dpkg does (epoch before the first ':', revision after
 * the last '-').
 */
import type { Application } from './application.ts';

/** Packages with a Status whose last word is one of these are on the system. */
const PRESENT = new Set(['installed', 'half-configured', 'triggers-awaited', 'triggers-pending']);

export function parseDpkgStatus(text: string): Application[] {
  const apps: Application[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (/^\s/.test(line) && last) {
        fields.set(last, `${fields.get(last)}\n${line.slice(1)}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
      if (!m) continue;
      last = m[1].toLowerCase();
      fields.set(last, m[2]);
    }
    const name = fields.get('package');
    const status = fields.get('status')?.trim().split(/\s+/);
    const version = fields.get('version');
    if (!name || !version || !status || !PRESENT.has(status[status.length - 1])) continue;
    const v = splitDebianVersion(version);
    const app: Application = { name, version: v.version };
    if (v.epoch !== undefined) app.epoch = v.epoch;
    if (v.release !== undefined) app.release = v.release;
    const arch = fields.get('architecture');
    if (arch) app.arch = arch;
    const description = fields.get('description');
    if (description) {
      const [summary, ...rest] = description.split('\n');
      app.summary = summary;
      if (rest.length) app.description = rest.join('\n');
    }
    const source = fields.get('source');
    if (source) app.sourcePackage = source.split(' ')[0];
    const url = fields.get('homepage');
    if (url) app.url = url;
    apps.push(app);
  }
  apps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return apps;
}

export function splitDebianVersion(full: string): { epoch?: number; version: string; release?: string } {
  let rest = full.trim();
  let epoch: number | undefined;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash > 0) return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
  return { epoch, version: rest };
}
