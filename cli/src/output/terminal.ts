/**
 * A stream filter for text bound for a terminal: control characters other
 * than newline and tab are shown escaped (\033 for ESC, as ls -b writes it),
 * so a guest's file or log line cannot move the cursor, retitle the window
 * or write the clipboard (OSC 52). Bytes that are not UTF-8 are escaped too.
 */
import { Transform } from 'node:stream';
import { escapeBytes } from './names.ts';

const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\uFFFD]/u;

export function escapeLine(line: Buffer): string {
  const s = line.toString('utf8');
  if (!UNSAFE.test(s) && Buffer.from(s, 'utf8').equals(line)) return s;
  // Keep newlines and tabs readable.
  return escapeBytes(line).replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

export function terminalSafe(): Transform {
  let carry = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let cut = data.lastIndexOf(0x0a) + 1;
      // A line longer than this is escaped in pieces: memory stays bounded.
      if (cut === 0 && data.length > 65536) cut = data.length;
      // Escape whole lines, so a multi-byte character is never split between chunks.
      carry = Buffer.from(data.subarray(cut));
      cb(null, cut ? escapeLine(data.subarray(0, cut)) : '');
    },
    flush(cb) {
      cb(null, carry.length ? escapeLine(carry) : '');
    },
  });
}
