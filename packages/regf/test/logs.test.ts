/**
 * Transaction logs are summarised, not replayed: a dirty hive with a log
 * holding newer entries says so; a clean hive ignores its logs, as Windows
 * does. The logs here are made by hand in the two layouts Windows writes
 * (old: a base block copy of file type 1, a dirty vector, pages; new: a base
 * block copy of file type 6, then HvLE entries), since no tool here writes them.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openHive } from '../src/index.ts';
import { BASE_BLOCK } from '../src/layout.ts';
import { baseBlockChecksum } from '../src/baseBlock.ts';
import { SPECIAL_HIVE } from './hivex.ts';
import { MemorySource } from '../../../test/support/memorySource.ts';

function withSequences(hive: Buffer, primary: number, secondary: number): Buffer {
  const out = Buffer.from(hive);
  out.writeUInt32LE(primary, BASE_BLOCK.primarySequence);
  out.writeUInt32LE(secondary, BASE_BLOCK.secondarySequence);
  out.writeUInt32LE(baseBlockChecksum(out), BASE_BLOCK.checksum);
  return out;
}

/** A log's first sector: the hive's base block as a log of `fileType`, with both sequence numbers `sequence`. */
function logHead(hive: Buffer, fileType: number, sequence: number): Buffer {
  const head = Buffer.from(hive.subarray(0, 512));
  head.writeUInt32LE(fileType, BASE_BLOCK.fileType);
  head.writeUInt32LE(sequence, BASE_BLOCK.primarySequence);
  head.writeUInt32LE(sequence, BASE_BLOCK.secondarySequence);
  head.writeUInt32LE(baseBlockChecksum(head), BASE_BLOCK.checksum);
  return head;
}

/** A new-format log entry of one dirty page (its hashes are not checked by the summary). */
function logEntry(sequence: number, binsSize: number): Buffer {
  const entry = Buffer.alloc(512 + 4096);
  entry.write('HvLE', 0, 'latin1');
  entry.writeUInt32LE(entry.length, 4);
  entry.writeUInt32LE(sequence, 12);
  entry.writeUInt32LE(binsSize, 16);
  entry.writeUInt32LE(1, 20);
  return entry;
}

describe('regf: transaction logs are summarised, never replayed', () => {
  let special: Buffer;
  before(async () => {
    special = await readFile(SPECIAL_HIVE);
  });

  it('a dirty hive with a new-format log holding newer entries says so, and reads the primary as it is', async () => {
    const dirty = withSequences(special, 0x30, 0x2f);
    const binsSize = special.readUInt32LE(BASE_BLOCK.hiveBinsDataSize);
    const log1 = Buffer.concat([logHead(dirty, 6, 0x2e), logEntry(0x2e, binsSize), logEntry(0x2f, binsSize), logEntry(0x30, binsSize), logEntry(0x31, binsSize), Buffer.from('garbage after the last entry')]);
    const hive = await openHive(dirty, {
      name: 'SYSTEM',
      logs: [
        { name: 'SYSTEM.LOG1', data: log1 },
        { name: 'SYSTEM.LOG2', data: new MemorySource(Buffer.alloc(0), 'SYSTEM.LOG2', 0) },
      ],
    });
    assert.equal(hive.dirty, true);
    assert.deepEqual(hive.dirtyReasons, [
      'primary sequence number 48 differs from secondary sequence number 47',
      'SYSTEM.LOG1 holds 2 log entries newer than the primary file (not replayed)',
    ]);
    assert.deepEqual(hive.transactionLogs, [
      { name: 'SYSTEM.LOG1', size: log1.length, format: 'new', pending: true, primarySequence: 0x2e, secondarySequence: 0x2e, entries: 4, pendingEntries: 2 },
      { name: 'SYSTEM.LOG2', size: 0, format: 'empty', pending: false },
    ]);
    assert.equal((await hive.key('weird™'))?.name, 'weird™');
  });

  it('a clean hive ignores its logs, as Windows does; an old-format log applies only with the same time stamp', async () => {
    const binsSize = special.readUInt32LE(BASE_BLOCK.hiveBinsDataSize);
    const newer = Buffer.concat([logHead(special, 6, 0x200), logEntry(0x200, binsSize)]);
    const clean = await openHive(special, { name: 'SYSTEM', logs: [{ name: 'SYSTEM.LOG1', data: newer }] });
    assert.equal(clean.dirty, false);
    assert.equal(clean.transactionLogs[0].pending, false);
    assert.equal(clean.transactionLogs[0].pendingEntries, 1);

    const dirty = withSequences(special, 0x30, 0x2f);
    const old = Buffer.concat([logHead(dirty, 1, 0x30), Buffer.from('DIRT'), Buffer.alloc(508)]);
    const stale = Buffer.from(old);
    stale.writeBigUInt64LE(1n, BASE_BLOCK.lastWritten);
    stale.writeUInt32LE(baseBlockChecksum(stale), BASE_BLOCK.checksum);
    const torn = Buffer.from(old);
    torn.writeUInt32LE(0x31, BASE_BLOCK.primarySequence);
    torn.writeUInt32LE(baseBlockChecksum(torn), BASE_BLOCK.checksum);
    const hive = await openHive(dirty, {
      name: 'software',
      logs: [
        { name: 'software.LOG', data: old },
        { name: 'stale.LOG', data: stale },
        { name: 'torn.LOG', data: torn },
        { name: 'junk.LOG', data: Buffer.alloc(4096, 0x41) },
      ],
    });
    assert.deepEqual(
      hive.transactionLogs.map((l) => [l.name, l.format, l.pending, l.problem]),
      [
        ['software.LOG', 'old', true, undefined],
        ['stale.LOG', 'old', false, undefined],
        ['torn.LOG', 'old', false, 'it was not completely written (its sequence numbers differ)'],
        ['junk.LOG', 'unknown', false, 'no "regf" signature'],
      ],
    );
    assert.equal(hive.dirtyReasons[1], 'software.LOG holds changes not yet written to the primary file (not replayed)');
  });
});
