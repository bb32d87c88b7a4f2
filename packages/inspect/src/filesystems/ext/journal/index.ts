/**
 * Opening the internal journal of a filesystem that needs recovery: read the
 * journal inode from the device as it is (the kernel does the same before it
 * replays), map its blocks, recover, and return the replayed view.
 */
import type { BlockSource } from '@guestlens/qcow2-js';
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

/** Largest journal we accept: jbd2 itself caps journals far below this (2^32 blocks is the format's limit). */
const MAX_JOURNAL_BLOCKS = 2 ** 31;

export async function openJournal(vol: ExtVolume, journalIno: number): Promise<JournalReader> {
  const inode = await readInode(vol, journalIno, { special: true });
  const blocks = Math.floor(inode.size / vol.blockSize);
  if (blocks < 2 || blocks > MAX_JOURNAL_BLOCKS) throw vol.corrupt(`journal inode ${journalIno}`, undefined, `journal size ${inode.size} bytes is not usable`);
  const runs = (await mapBlocks(vol, inode, 0, blocks)).filter((r) => r.pblk !== undefined);
  const pblk = (logical: number): number => {
    const run = findRun(runs, logical);
    if (!run) throw vol.corrupt(`journal inode ${journalIno}`, undefined, `journal block ${logical} is not mapped (a hole in the journal)`);
    return (run.pblk as number) + (logical - run.lblk);
  };
  const sbPblk = pblk(0);
  const jsb = parseJournalSuperblock(vol, await vol.readBlocks(sbPblk, 1), blocks, `journal superblock (inode ${journalIno})`, sbPblk * vol.blockSize);
  return {
    jsb,
    pblk,
    read: (logical: number) => vol.readBlocks(pblk(logical), 1),
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
