/**
 * What `guestlens tail` prints: lines as they are (escaped on a terminal,
 * unless --raw), virt-tail's `\n\n--- PATH ---\n\n` banner whenever the
 * output switches to another file (several files, not -q), or with --json
 * one object per line for scripts: {path, line, inode, offset} (plus
 * `lineHex` when the bytes are not UTF-8, `partial` when no newline ended
 * the line). Notices go to stderr, each naming the guest and the path.
 */
import type { Line } from './lines.ts';
import type { TailSink, TailedFile } from './tailedFile.ts';
import { escapeLine } from '../output/terminal.ts';
import { safeText } from '../output/names.ts';

export interface TailOutputOptions {
  json: boolean;
  /** Banners between files (virt-tail's). */
  banners: boolean;
  /** Escape control characters (a terminal, without --raw). */
  escape: boolean;
  guestName: string;
}

export class TailOutput implements TailSink {
  private last: TailedFile | undefined;
  private chunks: Buffer[] = [];
  /** Whether the last text printed ended inside a line (a partial line given out). */
  private midLine = false;

  constructor(private readonly o: TailOutputOptions) {}

  lines(file: TailedFile, lines: Line[]): void {
    if (this.o.json) {
      for (const l of lines) {
        const text = l.bytes.toString('utf8');
        const record: Record<string, unknown> = { path: file.path, line: text, inode: file.inode, offset: l.offset };
        if (!Buffer.from(text, 'utf8').equals(l.bytes)) record.lineHex = l.bytes.toString('hex');
        if (l.partial) record.partial = true;
        this.chunks.push(Buffer.from(`${JSON.stringify(record)}\n`));
      }
      return;
    }
    if (this.o.banners && this.last !== file) this.chunks.push(Buffer.from(`${this.midLine ? '\n' : ''}\n\n--- ${safeText(file.path)} ---\n\n`));
    this.last = file;
    for (const l of lines) {
      this.chunks.push(this.o.escape ? Buffer.from(escapeLine(l.bytes)) : l.bytes);
      if (!l.partial) this.chunks.push(NEWLINE);
      this.midLine = l.partial;
    }
  }

  notice(file: TailedFile, message: string): void {
    // Lines read before the notice come out before it.
    void this.flush();
    process.stderr.write(`guestlens: tail: ${this.o.guestName}: ${safeText(file.path)}: ${safeText(message)}\n`);
  }

  /** Write what the poll produced; resolves when stdout has taken it (a slow reader slows polls, memory stays flat). */
  async flush(): Promise<void> {
    if (this.chunks.length === 0) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    if (!process.stdout.write(data)) await new Promise<void>((r) => process.stdout.once('drain', () => r()));
  }
}

const NEWLINE = Buffer.from('\n');
