/**
 * The library against journalctl on real files written by systemd's own
 * writer: every output mode and every filter, byte for byte (JSON: member
 * by member, journalctl's key order being random), for each compression,
 * compact and regular files, keyed and unkeyed hashes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { scratchDir } from '../../../test/support/scratch.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { haveJournalTools, variedEntries, writeJournal, BOOT_A, BOOT_B, type WriterEnv } from './support/fixtures.ts';
import { closeFiles, compare, openFiles } from './support/oracle.ts';
import { JournalQuery, JournalReader, type JournalFile, type JournalQueryOptions, type OutputMode } from '@guestlens/journal';

const MODES: OutputMode[] = ['short', 'short-iso', 'short-precise', 'json', 'export', 'cat'];

const VARIANTS: [string, WriterEnv][] = [
  ['zstd, compact, keyed hash (systemd 252 defaults)', {}],
  ['xz (re-encoded), regular (64-bit offsets), jenkins hash', { compress: 'XZ', compact: false, keyedHash: false }],
  ['lz4 (re-encoded), compact, keyed hash', { compress: 'LZ4', compact: true, keyedHash: true }],
  ['uncompressed, regular, keyed hash', { compress: '0', compact: false, keyedHash: true }],
  ['zstd, regular, jenkins hash', { compact: false, keyedHash: false }],
];

/** Queries with journalctl's arguments for the same filter. */
const QUERIES: [JournalQueryOptions, string[]][] = [
  [{}, []],
  [{ lines: 7 }, ['-n', '7']],
  [{ lines: 0 }, ['-n', '0']],
  [{ since: 1700000050000000n }, ['--since', '@1700000050']],
  [{ since: 1700000050000000n, until: 1700000100000000n }, ['--since', '@1700000050', '--until', '@1700000100']],
  [{ since: 1700000050000000n, lines: 5 }, ['--since', '@1700000050', '-n', '5']],
  [{ units: ['foo'] }, ['-u', 'foo']],
  [{ units: ['bar.service', 'system-getty.slice'] }, ['-u', 'bar.service', '-u', 'system-getty.slice']],
  [{ units: ['user@*'] }, ['-u', 'user@*']],
  [{ priority: 'err' }, ['-p', 'err']],
  [{ priority: 'warning..notice' }, ['-p', 'warning..notice']],
  [{ priority: '2' }, ['-p', '2']],
  [{ identifiers: ['sshd', 'cron'] }, ['-t', 'sshd', '-t', 'cron']],
  [{ boot: { offset: 0 } }, ['-b']],
  [{ boot: { offset: -1 } }, ['-b', '-1']],
  [{ boot: { offset: 1 } }, ['-b', '1']],
  [{ boot: { id: BOOT_B } }, ['-b', BOOT_B]],
  [{ boot: { id: BOOT_A, offset: 1 } }, ['-b', `${BOOT_A}+1`]],
  [{ matches: ['FOO=first'] }, ['FOO=first']],
  [{ matches: ['_PID=101', '_PID=102', 'PRIORITY=5'] }, ['_PID=101', '_PID=102', 'PRIORITY=5']],
  [{ matches: ['SYSLOG_IDENTIFIER=cron', '+', '_HOSTNAME=other-host'] }, ['SYSLOG_IDENTIFIER=cron', '+', '_HOSTNAME=other-host']],
  [{ units: ['foo'], priority: 'info', lines: 3 }, ['-u', 'foo', '-p', 'info', '-n', '3']],
];

describe('journal: output and filters match journalctl', function () {
  this.timeout(300000);
  const reason = haveJournalTools();
  before(function () {
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
  });

  for (const [label, env] of VARIANTS) {
    describe(label, () => {
      let path: string;
      let files: JournalFile[];
      before(async () => {
        path = join(scratchDir('journal-oracle'), 'varied.journal');
        await writeJournal(path, variedEntries(), env);
        files = await openFiles([path]);
      });
      after(async () => {
        if (files) await closeFiles(files);
      });

      it('reads the file the writer made (flags as asked)', () => {
        const h = files[0].header;
        assert.equal(h.state, 'offline');
        assert.equal(h.nEntries, 240);
        if (env.compact !== undefined) assert.equal(h.compact, env.compact);
        if (env.keyedHash !== undefined) assert.equal(h.keyedHash, env.keyedHash);
      });

      it('has DATA objects in the compression asked for (messages over 512 bytes)', async () => {
        const kinds = new Set<string>();
        const reader = new JournalReader(files);
        for (let e = await reader.next(); e; e = await reader.next()) {
          for (const p of e.entry.items) kinds.add((await files[0].dataCompression(p)) ?? '?');
        }
        const want = { XZ: 'xz', LZ4: 'lz4', ZSTD: 'zstd', '0': undefined }[env.compress ?? 'ZSTD'];
        if (want) assert.ok(kinds.has(want), `no ${want} object among ${[...kinds]}`);
        else assert.deepEqual([...kinds], ['none']);
      });

      it('filters select something, and not everything', async () => {
        for (const [query, args] of QUERIES.slice(6)) {
          const q = await JournalQuery.open(files, query);
          let n = 0;
          for await (const _ of q.entries()) n++;
          assert.ok(n > 0 && n < 240, `${args.join(' ')} selected ${n} entries`);
        }
      });

      it('every mode, unfiltered', async () => {
        await guardImages([path], async () => {
          for (const mode of MODES) await compare(files, [path], mode, {}, []);
        });
      });

      it('every filter, in short and json (export and cat for a sample)', async () => {
        for (const [i, [query, args]] of QUERIES.entries()) {
          await compare(files, [path], 'short', query, args);
          await compare(files, [path], 'json', query, args);
          if (i % 4 === 0) {
            await compare(files, [path], 'export', query, args);
            await compare(files, [path], 'cat', query, args);
          }
        }
      });
    });
  }
});
