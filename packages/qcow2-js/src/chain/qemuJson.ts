/**
 * The JSON dialect of QEMU's `json:{...}` pseudo-protocol (qobject/json-parser.c):
 * RFC 8259 plus single-quoted strings and the `\'` escape; control characters
 * and `\u0000` are rejected, as are duplicate keys. Then QEMU's qdict_flatten:
 * nested objects become dotted keys (`{"file":{"filename":"x"}}` →
 * `file.filename`), list items get their index (`a.0`).
 */

export type QemuJsonValue = string | number | boolean | null | QemuJsonValue[] | { [key: string]: QemuJsonValue };

export class QemuJsonError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at character ${position}`);
    this.name = 'QemuJsonError';
  }
}

/** Nesting bound: QEMU's parser stops at 1024 too (MAX_NESTING). */
const MAX_NESTING = 1024;

export function parseQemuJson(text: string): QemuJsonValue {
  const parser = new Parser(text);
  parser.skipSpace();
  const value = parser.value(0);
  parser.skipSpace();
  if (parser.pos !== text.length) throw new QemuJsonError('unexpected text after the JSON value', parser.pos);
  return value;
}

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else break;
    }
  }

  value(depth: number): QemuJsonValue {
    if (depth > MAX_NESTING) throw new QemuJsonError('too deeply nested', this.pos);
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"' || c === "'") return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    throw new QemuJsonError(c === undefined ? 'unexpected end of JSON' : `unexpected character ${JSON.stringify(c)}`, this.pos);
  }

  private object(depth: number): { [key: string]: QemuJsonValue } {
    const result: { [key: string]: QemuJsonValue } = Object.create(null);
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return result;
    }
    for (;;) {
      this.skipSpace();
      const c = this.text[this.pos];
      if (c !== '"' && c !== "'") throw new QemuJsonError('expected a string key', this.pos);
      const keyAt = this.pos;
      const key = this.string();
      if (Object.prototype.hasOwnProperty.call(result, key)) throw new QemuJsonError(`duplicate key ${JSON.stringify(key)}`, keyAt);
      this.skipSpace();
      if (this.text[this.pos] !== ':') throw new QemuJsonError("expected ':'", this.pos);
      this.pos++;
      this.skipSpace();
      result[key] = this.value(depth + 1);
      this.skipSpace();
      const sep = this.text[this.pos++];
      if (sep === '}') return result;
      if (sep !== ',') throw new QemuJsonError("expected ',' or '}'", this.pos - 1);
    }
  }

  private array(depth: number): QemuJsonValue[] {
    const result: QemuJsonValue[] = [];
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return result;
    }
    for (;;) {
      this.skipSpace();
      result.push(this.value(depth + 1));
      this.skipSpace();
      const sep = this.text[this.pos++];
      if (sep === ']') return result;
      if (sep !== ',') throw new QemuJsonError("expected ',' or ']'", this.pos - 1);
    }
  }

  private string(): string {
    const quote = this.text[this.pos++];
    let out = '';
    for (;;) {
      if (this.pos >= this.text.length) throw new QemuJsonError('unterminated string', this.pos);
      const c = this.text[this.pos++];
      if (c === quote) return out;
      if (c < ' ') throw new QemuJsonError('control character in string', this.pos - 1);
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[this.pos++];
      switch (e) {
        case '"':
        case "'":
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          let cp = this.hex4();
          if (cp === 0) throw new QemuJsonError('\\u0000 is not supported', this.pos - 6);
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (this.text.startsWith('\\u', this.pos)) {
              this.pos += 2;
              const low = this.hex4();
              if (low < 0xdc00 || low > 0xdfff) throw new QemuJsonError('invalid UTF-16 surrogate pair', this.pos - 6);
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else {
              throw new QemuJsonError('missing second half of surrogate pair', this.pos);
            }
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            throw new QemuJsonError('unpaired low surrogate', this.pos - 6);
          }
          out += String.fromCodePoint(cp);
          break;
        }
        default:
          throw new QemuJsonError(`invalid escape sequence \\${e ?? ''}`, this.pos - 1);
      }
    }
  }

  private hex4(): number {
    const digits = this.text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) throw new QemuJsonError('invalid \\u escape', this.pos);
    this.pos += 4;
    return parseInt(digits, 16);
  }

  private number(): number {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!match) throw new QemuJsonError('invalid number', this.pos);
    this.pos += match[0].length;
    return Number(match[0]);
  }
}

export type FlatOptions = Map<string, string | number | boolean | null>;

/** qdict_flatten: nested objects and lists become dotted keys. Conflicts (`a.b` twice) are errors. */
export function flattenOptions(value: { [key: string]: QemuJsonValue }): FlatOptions {
  const out: FlatOptions = new Map();
  const visit = (prefix: string, v: QemuJsonValue): void => {
    if (v !== null && typeof v === 'object') {
      const entries = Array.isArray(v) ? v.map((item, i) => [String(i), item] as const) : Object.entries(v);
      for (const [k, child] of entries) visit(prefix ? `${prefix}.${k}` : k, child);
      return;
    }
    if (out.has(prefix)) throw new QemuJsonError(`option ${JSON.stringify(prefix)} is given twice`, 0);
    out.set(prefix, v);
  };
  visit('', value);
  return out;
}
