/**
 * A journal file that is being written: systemd-journal-remote appends
 * entries (fed batch by batch on its stdin) while the reader follows the
 * file, refreshing between rounds. Every entry must come out once, in
 * order; errors met on the way must be retryable ones (the file is ONLINE
 * and opened with `live: true`), and the reader goes on after a refresh.
 * (The qcow2/FUSE variant, through a guest file system, is the integrator's.)
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isRetryable } from '@guestlens/block';
import { RawFileSource } from '@guestlens/qcow2-js';
import { scratchDir } from '../../../test/support/scratch.ts';
import { startTracked, stop, waitFor } from '../../../test/support/processes.ts';
import { BOOT_A, JOURNAL_REMOTE, exportEntry, filler, haveJournalTools, writerEnv } from './support/fixtures.ts';
import { JournalFile, JournalQuery, entryRecord } from '@guestlens/journal';

const TOTAL = 1200;

function liveEntry(i: number): Buffer {
  return exportEntry({
    realtime: 1720000000000000n + BigInt(i) * 1000n,
    monotonic: BigInt(1_000_000 + i * 1000),
    bootId: BOOT_A,
    fields: [
      ['SYSLOG_IDENTIFIER', 'live'],
      ['MESSAGE', i % 50 === 7 ? `live ${i} ${filler(900, i)}` : `live ${i}`],
      ['SEQ', String(i)],
    ],
  });
}

describe('journal: following a file while systemd-journal-remote writes it', function () {
  this.timeout(180000);
  const reason = haveJournalTools();
  before(function () {
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
  });

  it('every entry once, in order, across refreshes', async () => {
    const path = join(scratchDir('journal-live'), 'system.journal');
    const writer = startTracked(JOURNAL_REMOTE, [`--output=${path}`, '-'], { input: true, env: { ...process.env, ...writerEnv() } as Record<string, string> });
    const stdin = writer.stdin!;
    let written = 0;
    const feed = async (n: number) => {
      const parts: Buffer[] = [];
      for (let k = 0; k < n && written < TOTAL; k++) parts.push(liveEntry(written++));
      if (!stdin.write(Buffer.concat(parts))) await new Promise((r) => stdin.once('drain', r));
    };
    await feed(100);
    await waitFor('the journal file', () => existsSync(path) && statSync(path).size > 4096, 15000);

    const file = await JournalFile.open(await RawFileSource.open(path), { live: true });
    const query = await JournalQuery.open([file], { follow: true });
    const seen: number[] = [];
    let sawOnline = false;
    let retries = 0;
    const drain = async () => {
      try {
        for await (const e of query.entries()) {
          const fields = (await entryRecord(e)).fields.map((f) => f.toString());
          const seq = fields.find((f) => f.startsWith('SEQ='));
          assert.ok(seq, `entry without SEQ: ${fields.join(' | ')}`);
          const msg = fields.find((f) => f.startsWith('MESSAGE='))!;
          assert.match(msg, new RegExp(`^MESSAGE=live ${seq.slice(4)}( |$)`), 'a torn entry: its fields do not belong together');
          seen.push(Number(seq.slice(4)));
        }
      } catch (err) {
        assert.ok(isRetryable(err), `a non-retryable error while following: ${(err as Error).stack}`);
        retries++;
      }
    };
    try {
      for (let round = 0; round < 400 && seen.length < TOTAL; round++) {
        if (written < TOTAL) await feed(25 + (round % 4) * 20);
        await query.refresh();
        if (file.header.state === 'online') sawOnline = true;
        await drain();
        await new Promise((r) => setTimeout(r, 10));
      }
      stdin.end();
      await waitFor('journal-remote to finish', () => writer.exitCode !== null, 20000);
      await query.refresh();
      await drain();
    } finally {
      await stop(writer);
      await file.close();
      await file.source.close();
    }
    assert.ok(sawOnline, 'the file was never seen ONLINE: the test did not read while it was written');
    assert.equal(file.header.state, 'offline');
    assert.equal(seen.length, TOTAL, `${seen.length} entries read (${retries} retries)`);
    seen.forEach((s, i) => assert.equal(s, i, `entry ${i} came out as ${s}`));
  });
});
