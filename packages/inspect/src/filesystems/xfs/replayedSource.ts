/**
 * The device as the kernel sees it after log recovery: the bytes of the
 * image with the 512-byte blocks recovery rewrote laid over them, in memory.
 * Nothing is written. It also says which blocks came from the log, so the
 * readers do not check the CRCs recovery would have recomputed when it wrote
 * those buffers back.
 */
import { checkRange, type BlockSource, type Extent } from '@guestlens/block';

const BB = 512;

export class ReplayedSource implements BlockSource {
  readonly name: string;
  readonly size: number;
  private readonly blocks = new Map<number, Buffer>();

  constructor(private readonly base: BlockSource) {
    this.name = base.name;
    this.size = base.size;
  }

  /** Blocks the log rewrote. */
  get replayedBlocks(): number {
    return this.blocks.size;
  }

  /** Lay `data` (a multiple of 512 bytes) over the device at basic block `daddr`. */
  write(daddr: number, data: Buffer): void {
    for (let i = 0; i * BB < data.length; i++) this.blocks.set(daddr + i, Buffer.from(data.subarray(i * BB, (i + 1) * BB)));
  }

  /** The rewritten bytes of `count` basic blocks from `daddr`, when all of them were rewritten. */
  peek(daddr: number, count: number): Buffer | undefined {
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const b = this.blocks.get(daddr + i);
      if (!b) return undefined;
      parts.push(b);
    }
    return Buffer.concat(parts);
  }

  /** Whether any byte of [offset, offset + length) came from the log. */
  touched(offset: number, length: number): boolean {
    if (this.blocks.size === 0) return false;
    for (let bb = Math.floor(offset / BB); bb * BB < offset + length; bb++) if (this.blocks.has(bb)) return true;
    return false;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = await this.base.read(offset, length);
    if (this.blocks.size === 0) return out;
    const first = Math.floor(offset / BB);
    const last = Math.floor((offset + length - 1) / BB);
    // Walk whichever is smaller: the blocks of the read, or the rewritten blocks.
    if (last - first + 1 <= this.blocks.size) {
      for (let bb = first; bb <= last; bb++) this.patch(out, offset, length, bb);
    } else {
      for (const bb of this.blocks.keys()) if (bb >= first && bb <= last) this.patch(out, offset, length, bb);
    }
    return out;
  }

  private patch(out: Buffer, offset: number, length: number, bb: number): void {
    const data = this.blocks.get(bb);
    if (!data) return;
    const from = Math.max(offset, bb * BB);
    const to = Math.min(offset + length, (bb + 1) * BB);
    data.copy(out, from - offset, from - bb * BB, to - bb * BB);
  }

  async extent(offset: number, length: number): Promise<Extent> {
    return this.base.extent(offset, length);
  }

  async refresh(): Promise<void> {}

  async close(): Promise<void> {}
}
