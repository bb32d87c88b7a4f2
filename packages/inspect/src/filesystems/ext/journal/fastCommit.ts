/**
 * Fast commits (jbd2 FAST_COMMIT): after the regular log, the kernel replays
 * the fast-commit area when it starts with a head tag for the transaction
 * right after the last committed one. We do not model that replay; we only
 * tell whether it would happen, so statfs can say it is inexact.
 */
import type { JournalReader } from './recovery.ts';
import { JBD2_INCOMPAT } from './journalSuperblock.ts';

const EXT4_FC_TAG_HEAD = 0x9;

export async function fastCommitPending(journal: JournalReader, endSequence: number): Promise<boolean> {
  const { jsb } = journal;
  if (!(jsb.s_feature_incompat & JBD2_INCOMPAT.FAST_COMMIT)) return false;
  if (jsb.fcFirst >= jsb.fcLast) return false;
  const block = await journal.read(jsb.fcFirst);
  const tag = block.readUInt16LE(0);
  const len = block.readUInt16LE(2);
  if (tag !== EXT4_FC_TAG_HEAD || len < 8) return false;
  return block.readUInt32LE(8) === endSequence;
}
