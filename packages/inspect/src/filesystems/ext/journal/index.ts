/**
 * Opening the internal journal of a filesystem that needs recovery: read the
 * journal inode from the device as it is (the kernel does the same before it
 * replays), map its blocks, recover, and return the replayed view.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import { mapBlocks, type BlockRun } from '../mapping.ts';
import { readInode } from '../inode.ts';
import type { ExtVolume } from '../volume.ts';
import { parseJournalSuperblock, type JournalSuperblock } from './journalSuperblock.ts';
import { recoverJournal, type JournalReader, type RecoveryResult } from './recovery.ts';
import { ReplayedBlockSource } from './replayedSource.ts';
import { fastCommitPending } from './fastCommit.ts';

export { ReplayedBlockSource } from './replayedSource.ts';
export type { RecoveryResult } from './recovery.ts';
export type { JournalSuperblock } from './journalSuperblock.ts';

export interface ReplayOutcome {
  source: ReplayedBlockSource;
  jsb: JournalSuperblock;
  recovery: RecoveryResult;
  fastCommitPending: boolean;
}

/** jbd2 journals are 32-bit block numbered; anything larger is corrupt. */
const MAX_JOURNAL_BLOCKS = 2 ** 32 - 1;
/** The journal inode is mapped lazily, this many logical blocks at a time, so a hostile one cannot make us map it all. */
const MAP_CHUNK = 4096;
const MAP_CHUNKS_KEPT = 16;

export async function openJournal(vol: ExtVolume, journalIno: number): Promise<JournalReader> {
  const inode = await readInode(vol, journalIno, { special: true });
  const blocks = Math.floor(inode.size / vol.blockSize);
  if (blocks < 2 || blocks > MAX_JOURNAL_BLOCKS) throw vol.corrupt(`journal inode ${journalIno}`, undefined, `journal size ${inode.size} bytes is not usable`);
  const chunks = new BoundedLru<number, BlockRun[]>(MAP_CHUNKS_KEPT);
  const runsFor = async (logical: number): Promise<BlockRun[]> => {
    const chunk = Math.floor(logical / MAP_CHUNK);
    let runs = chunks.get(chunk);
    if (!runs) {
      const first = chunk * MAP_CHUNK;
      runs = await mapBlocks(vol, inode, first, Math.min(MAP_CHUNK, blocks - first));
      chunks.set(chunk, runs);
    }
    return runs;
  };
  const pblk = async (logical: number): Promise<number> => {
    if (!Number.isInteger(logical) || logical < 0 || logical >= blocks) {
      throw vol.corrupt(`journal inode ${journalIno}`, undefined, `journal block ${logical} is outside the journal (${blocks} blocks)`);
    }
    const run = findRun(await runsFor(logical), logical);
    if (!run || run.pblk === undefined) throw vol.corrupt(`journal inode ${journalIno}`, undefined, `journal block ${logical} is not mapped (a hole in the journal)`);
    return run.pblk + (logical - run.lblk);
  };
  const sbPblk = await pblk(0);
  const jsb = parseJournalSuperblock(vol, await vol.readBlocks(sbPblk, 1), blocks, `journal superblock (inode ${journalIno})`, sbPblk * vol.blockSize);
  return {
    jsb,
    pblk,
    read: async (logical: number) => vol.readBlocks(await pblk(logical), 1),
  };
}

function findRun(runs: BlockRun[], logical: number): BlockRun | undefined {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid];
    if (logical < r.lblk) hi = mid - 1;
    else if (logical >= r.lblk + r.length) lo = mid + 1;
    else return r;
  }
  return undefined;
}

export async function replayJournal(vol: ExtVolume, device: BlockSource, journalIno: number): Promise<ReplayOutcome> {
  const journal = await openJournal(vol, journalIno);
  const recovery = await recoverJournal(vol, journal);
  const pending = await fastCommitPending(journal, recovery.endSequence);
  return {
    source: new ReplayedBlockSource(device, vol.blockSize, recovery.blocks),
    jsb: journal.jsb,
    recovery,
    fastCommitPending: pending,
  };
}
