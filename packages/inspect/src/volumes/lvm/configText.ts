/**
 * LVM's configuration-text syntax, in which VG metadata is written
 * (libdm-config's grammar):
 *
 *   file    := entry*
 *   entry   := key '{' entry* '}' | key '=' value
 *   value   := scalar | '[' (scalar ','?)* ']'
 *   scalar  := integer | float | "escaped string" | 'raw string' | bare word
 *
 * `#` starts a comment to the end of the line; a NUL ends the text. Keys may
 * be quoted. A word is a number only where a value may start (after `=`,
 * `[` or `,`), as in LVM; integers are int64 and, as with strtoll(base 0), a
 * leading 0 means octal.
 *
 * The text comes from a guest's disk, so the parser is built to be fed
 * anything: one pass, no recursion deeper than LIMITS.textDepth, no more
 * than LIMITS.textNodes nodes, no token longer than LIMITS.tokenLength, and
 * every failure a ConfigTextError that says at which line and byte. A key
 * given twice in one section is refused (LVM never writes one, and which of
 * the two it would use depends on its version).
 */
import { shown } from './errors.ts';
import { LIMITS } from './layout.ts';

export type ConfigScalar = { kind: 'int'; value: bigint } | { kind: 'float'; value: number } | { kind: 'string'; value: string };
export type ConfigValue = ConfigScalar | { kind: 'array'; items: ConfigScalar[] };

export interface ConfigSection {
  kind: 'section';
  key: string;
  /** 1-based line of the key, for messages. */
  line: number;
  /** In text order. */
  children: Map<string, ConfigEntry>;
}

export interface ConfigAssignment {
  kind: 'value';
  key: string;
  line: number;
  value: ConfigValue;
}

export type ConfigEntry = ConfigSection | ConfigAssignment;

/** The text does not follow the grammar, or goes past a limit. */
export class ConfigTextError extends Error {
  constructor(
    readonly line: number,
    readonly byte: number,
    readonly reason: string,
  ) {
    super(`line ${line} (byte ${byte}): ${reason}`);
    this.name = 'ConfigTextError';
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

type TokenKind = '{' | '}' | '[' | ']' | ',' | '=' | 'int' | 'float' | 'escaped' | 'raw' | 'word' | 'eof';

/** isspace() in the C locale. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

class Lexer {
  pos = 0;
  line = 1;
  kind: TokenKind = 'eof';
  /** The token's text (strings: without quotes, not yet unescaped). */
  text = '';
  tokenStart = 0;
  tokenLine = 1;
  private readonly end: number;

  constructor(private readonly src: string) {
    const nul = src.indexOf('\0');
    this.end = nul < 0 ? src.length : nul;
  }

  fail(reason: string): never {
    throw new ConfigTextError(this.tokenLine, this.tokenStart, reason);
  }

  /** Whether the current token is of this kind (a method, so the type checker does not narrow across next()). */
  at(kind: TokenKind): boolean {
    return this.kind === kind;
  }

  /** Read the next token; `valueAllowed` says whether a number or bare value may start here. */
  next(valueAllowed: boolean): void {
    const s = this.src;
    this.skipSpace();
    this.tokenStart = this.pos;
    this.tokenLine = this.line;
    if (this.pos >= this.end) {
      this.kind = 'eof';
      this.text = '';
      return;
    }
    const c = s.charCodeAt(this.pos);
    const ch = s[this.pos];
    if (ch === '{' || ch === '}' || ch === '[' || ch === ']' || ch === ',' || ch === '=') {
      this.kind = ch;
      this.text = ch;
      this.pos++;
      return;
    }
    if (ch === '"' || ch === "'") {
      this.quoted(ch);
      return;
    }
    if (valueAllowed && (isDigit(c) || ch === '+' || ch === '-' || ch === '.')) {
      let p = this.pos + 1;
      let float = ch === '.';
      while (p < this.end) {
        const d = s.charCodeAt(p);
        if (isDigit(d)) p++;
        else if (d === 0x2e && !float) {
          float = true;
          p++;
        } else break;
      }
      this.take(p, float ? 'float' : 'int');
      return;
    }
    // A word runs to white space, a comment or one of = { } (so [ ] , " may be part of it, as in LVM).
    let p = this.pos;
    while (p < this.end) {
      const d = s.charCodeAt(p);
      if (isSpace(d) || d === 0x23 || d === 0x3d || d === 0x7b || d === 0x7d) break;
      p++;
    }
    this.take(p, 'word');
  }

  private take(end: number, kind: TokenKind): void {
    if (end - this.pos > LIMITS.tokenLength) this.fail(`a token longer than ${LIMITS.tokenLength} characters`);
    this.kind = kind;
    this.text = this.src.slice(this.pos, end);
    this.pos = end;
  }

  private quoted(quote: string): void {
    const s = this.src;
    let p = this.pos + 1;
    while (p < this.end && s[p] !== quote) {
      if (quote === '"' && s[p] === '\\' && p + 1 < this.end) p++;
      p++;
    }
    if (p >= this.end) this.fail('a string that is never closed');
    if (p - this.pos - 1 > LIMITS.tokenLength) this.fail(`a string longer than ${LIMITS.tokenLength} characters`);
    this.kind = quote === '"' ? 'escaped' : 'raw';
    this.text = s.slice(this.pos + 1, p);
    for (let i = this.text.indexOf('\n'); i >= 0; i = this.text.indexOf('\n', i + 1)) this.line++;
    this.pos = p + 1;
  }

  private skipSpace(): void {
    const s = this.src;
    while (this.pos < this.end) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x0a) {
        this.line++;
        this.pos++;
      } else if (isSpace(c)) this.pos++;
      else if (c === 0x23) {
        while (this.pos < this.end && s.charCodeAt(this.pos) !== 0x0a) this.pos++;
      } else break;
    }
  }
}

/** `\"` and `\\` stand for themselves; any other backslash is kept (dm_unescape_double_quotes). */
function unescape(text: string): string {
  return text.replace(/\\(["\\])/g, '$1');
}

/** Parse VG metadata text (decoded byte for byte, latin1) into its tree of sections. */
export function parseConfigText(text: string): ConfigSection {
  const lexer = new Lexer(text);
  let nodes = 0;
  const count = () => {
    if (++nodes > LIMITS.textNodes) lexer.fail(`more than ${LIMITS.textNodes} entries and values`);
  };
  const root: ConfigSection = { kind: 'section', key: '', line: 1, children: new Map() };

  const scalar = (): ConfigScalar => {
    count();
    const t = lexer.text;
    switch (lexer.kind) {
      case 'int':
        return { kind: 'int', value: parseInt64(t, lexer) };
      case 'float': {
        const value = Number(t);
        if (!Number.isFinite(value)) lexer.fail(`${shown(t, 40)} is not a number`);
        return { kind: 'float', value };
      }
      case 'escaped':
        return { kind: 'string', value: unescape(t) };
      case 'raw':
      case 'word':
        return { kind: 'string', value: t };
      default:
        return lexer.fail(`a value was expected, not ${describe(lexer)}`);
    }
  };

  const value = (): ConfigValue => {
    if (!lexer.at('[')) {
      const v = scalar();
      lexer.next(false);
      return v;
    }
    const items: ConfigScalar[] = [];
    lexer.next(true);
    while (!lexer.at(']')) {
      if (lexer.at('eof')) lexer.fail('an array that is never closed');
      items.push(scalar());
      lexer.next(true);
      if (lexer.at(',')) lexer.next(true);
    }
    lexer.next(false);
    return { kind: 'array', items };
  };

  // Sections nest through an explicit stack, so depth costs no recursion.
  const stack: ConfigSection[] = [root];
  lexer.next(false);
  for (;;) {
    const current = stack[stack.length - 1];
    if (lexer.at('eof')) {
      if (stack.length > 1) lexer.fail(`section ${shown(current.key, 40)} (line ${current.line}) is never closed`);
      return root;
    }
    if (lexer.at('}')) {
      if (stack.length === 1) lexer.fail('a "}" that closes no section');
      stack.pop();
      lexer.next(false);
      continue;
    }
    let key: string;
    if (lexer.at('escaped')) key = unescape(lexer.text);
    else if (lexer.at('raw') || lexer.at('word')) key = lexer.text;
    else return lexer.fail(`a key was expected, not ${describe(lexer)}`);
    if (key === '') lexer.fail('an empty key');
    const line = lexer.tokenLine;
    if (current.children.has(key)) lexer.fail(`${shown(key, 40)} appears twice in the same section`);
    count();
    lexer.next(false);
    if (lexer.at('{')) {
      if (stack.length > LIMITS.textDepth) lexer.fail(`sections nested more than ${LIMITS.textDepth} deep`);
      const section: ConfigSection = { kind: 'section', key, line, children: new Map() };
      current.children.set(key, section);
      stack.push(section);
      lexer.next(false);
      continue;
    }
    if (!lexer.at('=')) lexer.fail(`"=" or "{" was expected after ${shown(key, 40)}, not ${describe(lexer)}`);
    lexer.next(true);
    current.children.set(key, { kind: 'value', key, line, value: value() });
  }
}

function parseInt64(t: string, lexer: Lexer): bigint {
  const sign = t[0] === '-' ? -1n : 1n;
  const digits = t[0] === '-' || t[0] === '+' ? t.slice(1) : t;
  if (digits === '') lexer.fail(`${shown(t, 40)} is not a number`);
  let n: bigint;
  if (digits.length > 1 && digits[0] === '0') {
    if (!/^[0-7]+$/.test(digits) || digits.length > 23) lexer.fail(`${shown(t, 40)} is not an octal number`);
    n = BigInt(`0o${digits.slice(1)}`);
  } else {
    // More than 19 digits cannot fit; stop before BigInt does work for nothing.
    if (digits.replace(/^0+/, '').length > 19) lexer.fail(`${shown(t, 40)} is beyond 64 bits`);
    n = BigInt(digits);
  }
  n *= sign;
  if (n < INT64_MIN || n > INT64_MAX) lexer.fail(`${shown(t, 40)} is beyond 64 bits`);
  return n;
}

function describe(lexer: Lexer): string {
  if (lexer.at('eof')) return 'the end of the text';
  return shown(lexer.text, 40);
}
