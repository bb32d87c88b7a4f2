/**
 * Lines out of a byte stream that arrives in pieces: complete lines (with
 * their offsets in the file) as soon as their newline is read, the rest
 * held as the partial last line. Bytes, never strings: a guest's log may be
 * in any encoding, and a multi-byte character may straddle two reads.
 */
export interface Line {
  /** The line's bytes, without its newline. */
  bytes: Buffer;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** True when no newline ended it (a partial line printed after waiting for one, or the file's last bytes). */
  partial: boolean;
}

const NL = 0x0a;

export class LineSplitter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** File offset of the held partial line's first byte. */
  private heldAt = 0;

  constructor(
    /** A partial line longer than this is given out as it is (memory stays bounded whatever the guest writes). */
    private readonly maxLine = 1024 * 1024,
  ) {}

  /** Bytes read at `offset` (the file offset right after what came before). */
  push(data: Buffer, offset: number): Line[] {
    const out: Line[] = [];
    if (this.heldBytes === 0) this.heldAt = offset;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(NL, start);
      if (nl < 0) break;
      const piece = data.subarray(start, nl);
      const bytes = this.heldBytes ? Buffer.concat([...this.held, piece]) : Buffer.from(piece);
      out.push({ bytes, offset: this.heldBytes ? this.heldAt : offset + start, partial: false });
      this.held = [];
      this.heldBytes = 0;
      start = nl + 1;
      this.heldAt = offset + start;
    }
    if (start < data.length) {
      if (this.heldBytes === 0) this.heldAt = offset + start;
      this.held.push(Buffer.from(data.subarray(start)));
      this.heldBytes += data.length - start;
      if (this.heldBytes >= this.maxLine) {
        const l = this.flush();
        if (l) out.push(l);
      }
    }
    return out;
  }

  /** Bytes of a partial line held. */
  get pending(): number {
    return this.heldBytes;
  }

  /** Give out the partial line (no newline came), and forget it. */
  flush(): Line | undefined {
    if (this.heldBytes === 0) return undefined;
    const line = { bytes: Buffer.concat(this.held), offset: this.heldAt, partial: true };
    this.held = [];
    this.heldBytes = 0;
    return line;
  }

  /** Forget what is held (the file was truncated or replaced under it). */
  reset(): void {
    this.held = [];
    this.heldBytes = 0;
  }
}

/**
 * Where the last `n` lines of a file of `size` bytes start, reading it
 * backwards in chunks (a 1 GiB log costs a few reads, not a gigabyte):
 * a final line without a newline counts as a line, as tail(1) counts it.
 */
export async function lastLinesStart(read: (offset: number, length: number) => Promise<Buffer>, size: number, n: number, chunk = 64 * 1024): Promise<number> {
  if (n <= 0) return size;
  let end = size;
  let found = 0;
  // The file's own final newline ends the last line; it does not start one.
  let skipFinal = true;
  while (end > 0) {
    const start = Math.max(0, end - chunk);
    const data = await read(start, end - start);
    for (let i = data.length - 1; i >= 0; i--) {
      if (data[i] !== NL) {
        skipFinal = false;
        continue;
      }
      if (skipFinal && start + i === size - 1) {
        skipFinal = false;
        continue;
      }
      found++;
      if (found === n) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

/** Where line `k` (1-based, as tail -n +K counts) starts, reading forwards; the size when the file has fewer lines. */
export async function lineStart(read: (offset: number, length: number) => Promise<Buffer>, size: number, k: number, chunk = 64 * 1024): Promise<number> {
  let need = k - 1;
  if (need <= 0) return 0;
  for (let at = 0; at < size; ) {
    const data = await read(at, Math.min(chunk, size - at));
    if (data.length === 0) break;
    for (let i = data.indexOf(NL); i >= 0; i = data.indexOf(NL, i + 1)) if (--need === 0) return at + i + 1;
    at += data.length;
  }
  return size;
}
