/**
 * The device as the kernel sees it after journal recovery: a block source that
 * reads every replayed filesystem block from its copy in the journal and
 * everything else from the device below. Only the block map is kept in memory.
 */
import { checkRange, readInto, type BlockSource, type Extent } from '@guestlens/block';
import { JBD2_MAGIC_NUMBER } from './journalSuperblock.ts';
import type { ReplayTarget } from './recovery.ts';

export class ReplayedBlockSource implements BlockSource {
  readonly name: string;

  constructor(
    private readonly below: BlockSource,
    private readonly blockSize: number,
    private readonly replayed: Map<number, ReplayTarget>,
  ) {
    this.name = below.name;
  }

  get size(): number {
    return this.below.size;
  }

  get replayedBlocks(): number {
    return this.replayed.size;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (!this.touchesReplayed(offset, length)) return this.below.read(offset, length);
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    await readInto(this.below, target, targetOffset, offset, length);
    const bs = this.blockSize;
    for (const b of this.replayedIn(offset, length)) {
      const replay = this.replayed.get(b) as ReplayTarget;
      const copy = await this.below.read(replay.journalPblk * bs, bs);
      if (replay.escaped) copy.writeUInt32BE(JBD2_MAGIC_NUMBER, 0);
      const blockStart = b * bs;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + length, blockStart + bs);
      copy.copy(target, targetOffset + from - offset, from - blockStart, to - blockStart);
    }
  }

  private touchesReplayed(offset: number, length: number): boolean {
    return this.replayedIn(offset, length).length > 0;
  }

  /** Replayed blocks inside [offset, offset + length), walking whichever is smaller: the range or the replay map. */
  private replayedIn(offset: number, length: number): number[] {
    if (this.replayed.size === 0 || length === 0) return [];
    const firstBlock = Math.floor(offset / this.blockSize);
    const lastBlock = Math.floor((offset + length - 1) / this.blockSize);
    const out: number[] = [];
    if (lastBlock - firstBlock + 1 > this.replayed.size) {
      for (const b of this.replayed.keys()) if (b >= firstBlock && b <= lastBlock) out.push(b);
    } else {
      for (let b = firstBlock; b <= lastBlock; b++) if (this.replayed.has(b)) out.push(b);
    }
    return out;
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    return { offset, length, kind: 'data' };
  }

  async refresh(): Promise<void> {
    await this.below.refresh();
  }

  /** The device below belongs to whoever opened the filesystem: closing the view leaves it open. */
  async close(): Promise<void> {}
}
