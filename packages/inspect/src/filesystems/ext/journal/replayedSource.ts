/**
 * The device as the kernel sees it after journal recovery: a block source that
 * reads every replayed filesystem block from its copy in the journal and
 * everything else from the device below. Only the block map is kept in memory.
 */
import { checkRange, type BlockSource, type Extent } from '@guestlens/qcow2-js';
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
    if (this.replayed.size === 0 || length === 0) return this.below.read(offset, length);
    const bs = this.blockSize;
    const firstBlock = Math.floor(offset / bs);
    const lastBlock = Math.floor((offset + length - 1) / bs);
    let any = false;
    for (let b = firstBlock; b <= lastBlock && !any; b++) any = this.replayed.has(b);
    if (!any) return this.below.read(offset, length);
    const out = await this.below.read(offset, length);
    for (let b = firstBlock; b <= lastBlock; b++) {
      const target = this.replayed.get(b);
      if (!target) continue;
      const copy = await this.below.read(target.journalPblk * bs, bs);
      if (target.escaped) copy.writeUInt32BE(JBD2_MAGIC_NUMBER, 0);
      const blockStart = b * bs;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + length, blockStart + bs);
      copy.copy(out, from - offset, from - blockStart, to - blockStart);
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
