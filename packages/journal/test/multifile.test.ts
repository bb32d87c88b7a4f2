/**
 * Several files of one machine against journalctl --file=... and
 * --directory=: a rotation systemd-journal-remote made itself (an archived
 * system@....journal and the active system.journal, one seqnum_id), a user
 * journal from another writer interleaved by boot + monotonic time and by
 * realtime, a copy of a file (deduplicated), a *.journal~ file, and a
 * 100k-entry file checked on samples.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../../../test/support/scratch.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { BOOT_A, BOOT_B, bulkEntries, exportEntry, haveJournalTools, writeJournal, type ExportEntry } from './support/fixtures.ts';
import { closeFiles, compare, openFiles, journalctl, ours, assertSameBytes, assertSameJson } from './support/oracle.ts';
import { isJournalFileName, listBoots, type JournalFile, type OutputMode } from '@guestlens/journal';

const MODES: OutputMode[] = ['short', 'short-iso', 'short-precise', 'json', 'export', 'cat'];

/** 400 entries whose field names fill the field hash table: journal-remote rotates after ~250 distinct fields. */
function rotatingEntries(): ExportEntry[] {
  const out: ExportEntry[] = [];
  for (let i = 0; i < 400; i++) {
    out.push({
      realtime: 1700000000000000n + BigInt(i) * 1000000n,
      monotonic: BigInt(1000 + i * 1000),
      bootId: i < 300 ? BOOT_A : BOOT_B,
      fields: [['MESSAGE', `system message ${i}`], ['SYSLOG_IDENTIFIER', 'rot'], ['_HOSTNAME', 'guest01'], [`F${i % 300}`, 'x']],
    });
  }
  return out;
}

/** A user journal (its own writer, its own seqnum_id): the same boots, times interleaved with the system journal's. */
function userEntries(): ExportEntry[] {
  const out: ExportEntry[] = [];
  for (let i = 0; i < 120; i++) {
    const boot = i < 90 ? BOOT_A : BOOT_B;
    // Same boot: ordered by monotonic time, so make the realtime disagree a little to prove it.
    const k = boot === BOOT_A ? i * 3 + 1 : 300 + (i - 90) * 3 + 1;
    out.push({
      realtime: 1700000000000000n + BigInt(k) * 1000000n + (i % 2 ? 1500000n : -1500000n),
      monotonic: BigInt(1000 + k * 1000 + 500),
      bootId: boot,
      fields: [['MESSAGE', `user message ${i}`], ['SYSLOG_IDENTIFIER', 'gnome-shell'], ['_UID', '1000'], ['_HOSTNAME', 'guest01']],
    });
  }
  return out;
}

describe('journal: several files of a machine, as journalctl merges them', function () {
  this.timeout(300000);
  const reason = haveJournalTools();
  let dir: string;
  let paths: string[];
  let files: JournalFile[];

  before(async function () {
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    dir = scratchDir('journal-machine');
    await writeJournal(join(dir, 'system.journal'), rotatingEntries());
    await writeJournal(join(dir, 'user-1000.journal'), userEntries());
    paths = readdirSync(dir).filter(isJournalFileName).sort().map((n) => join(dir, n));
    files = await openFiles(paths);
  });
  after(async () => {
    if (files) await closeFiles(files);
  });

  it('the writer rotated: an archived file and the active one share a seqnum_id', () => {
    const states = files.map((f) => [f.name.split('/').pop(), f.header.state]);
    assert.ok(files.length === 3, `files: ${JSON.stringify(states)}`);
    const archived = files.filter((f) => f.header.state === 'archived');
    assert.equal(archived.length, 1, JSON.stringify(states));
    assert.match(archived[0].name, /system@[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{16}\.journal$/);
    const system = files.find((f) => f.name.endsWith('/system.journal'))!;
    assert.equal(system.header.seqnumId, archived[0].header.seqnumId);
  });

  it('every mode, merged (--file for each, and --directory)', async () => {
    await guardImages(paths, async () => {
      for (const mode of MODES) await compare(files, paths, mode, {}, []);
      const theirs = await journalctl([`--directory=${dir}`, '-o', 'short-iso']);
      assertSameBytes(await ours(files, 'short-iso'), theirs.stdout, '--directory');
    });
  });

  it('filters and tails across the files', async () => {
    const queries: [object, string[]][] = [
      [{ lines: 25 }, ['-n', '25']],
      [{ boot: { offset: -1 } }, ['-b', '-1']],
      [{ boot: { offset: 0 } }, ['-b', '0']],
      [{ identifiers: ['gnome-shell'] }, ['-t', 'gnome-shell']],
      [{ since: 1700000290000000n, until: 1700000310000000n }, ['--since', '@1700000290', '--until', '@1700000310']],
      [{ matches: ['_UID=1000', '+', 'F7=x'] }, ['_UID=1000', '+', 'F7=x']],
    ];
    for (const [q, args] of queries) {
      await compare(files, paths, 'short', q, args);
      await compare(files, paths, 'json', q, args);
    }
  });

  it('lists the boots as journalctl --list-boots does', async () => {
    const boots = await listBoots(files);
    assert.deepEqual(boots.map((b) => b.bootId), [BOOT_A, BOOT_B]);
    const theirs = (await journalctl([...paths.map((p) => `--file=${p}`), '--list-boots', '-o', 'json'])).stdout.toString();
    assert.match(theirs, new RegExp(`${BOOT_A}[\\s\\S]*${BOOT_B}`));
  });

  it('shows an entry that is in two files once (a copy, a *.journal~ file)', async () => {
    const copy = join(scratchDir('journal-dup'), 'system@copy.journal~');
    copyFileSync(paths[1], copy);
    const withCopy = [...paths, copy];
    const both = await openFiles(withCopy);
    try {
      for (const mode of ['short', 'json'] as OutputMode[]) await compare(both, withCopy, mode, {}, []);
      const alone = (await ours(files, 'cat')).toString();
      assert.equal((await ours(both, 'cat')).toString(), alone);
    } finally {
      await closeFiles(both);
    }
  });
});

describe('journal: a 100k-entry file, on samples', function () {
  this.timeout(300000);
  const reason = haveJournalTools();
  let path: string;
  let files: JournalFile[];
  before(async function () {
    if (reason) this.skip();
    path = join(scratchDir('journal-100k'), 'system.journal');
    const parts: Buffer[] = [];
    for (const e of bulkEntries(100_000)) parts.push(exportEntry(e));
    await writeJournal(path, Buffer.concat(parts));
    files = await openFiles([path]);
  });
  after(async () => {
    if (files) await closeFiles(files);
  });

  it('has every entry, and the tail, a time window and a unit agree with journalctl', async () => {
    assert.equal(files[0].header.nEntries, 100_000);
    await compare(files, [path], 'short', { lines: 200 }, ['-n', '200']);
    await compare(files, [path], 'json', { lines: 200 }, ['-n', '200']);
    await compare(files, [path], 'export', { since: 1710000050000000n, until: 1710000052000000n }, ['--since', '@1710000050', '--until', '@1710000052']);
    await compare(files, [path], 'json', { units: ['cron'], lines: 50 }, ['-u', 'cron', '-n', '50']);
    const theirs = await journalctl([`--file=${path}`, '-o', 'cat', '-n', '3000', '-p', 'warning']);
    assertSameBytes(await ours(files, 'cat', { lines: 3000, priority: 'warning' }), theirs.stdout, '-o cat -n 3000 -p warning');
    void assertSameJson;
  });
});
