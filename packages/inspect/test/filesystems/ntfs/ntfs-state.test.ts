/**
 * What Windows leaves unfinished, and damage the driver works around. The
 * oracle for the first is ntfs-3g's refusal to mount read-write (its
 * read-only mount, whose numbers ours must still equal, shows the disk as
 * it is): a hibernation file with a HIBR header, a $LogFile restart area of
 * version 2.0 (Fast Startup) or with clients in use and not clean, and the
 * $Volume dirty flag (which ntfsinfo -m prints). The second: a damaged MFT
 * record among the first four is read from $MFTMirr, an unusable boot
 * sector is replaced by its backup at the end of the device; both say so
 * in `warnings`, and a torn record of a live image is retryable.
 */
import assert from 'node:assert/strict';
import { copyFile, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { NtfsFilesystem } from '../../../src/filesystems/ntfs/index.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { mkntfs, ntfs3gRefusal, ntfs3gStatfs, ntfs3gUnavailable, ntfsinfoVolume, withNtfs3g } from '../../../../../test/support/ntfs3g.ts';
import { pseudoRandom } from './ntfsFixtures.ts';
import { walkNtfsDriver } from './ntfsWalk.ts';

async function openFile(image: string): Promise<{ fs: NtfsFilesystem; close: () => Promise<void> }> {
  const src = await RawFileSource.open(image);
  return { fs: await NtfsFilesystem.open(src), close: () => src.close() };
}

async function patchFile(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

function copyOf(image: string, name: string): Promise<string> {
  const to = join(scratchDir('ntfs-state'), name);
  return copyFile(image, to).then(() => to);
}

/** A $LogFile restart page (4096 bytes, multi-sector protected) as Windows writes one. */
function restartPage(o: { major: number; minor: number; inUse: boolean; clean: boolean; fileSize: number }): Buffer {
  const p = Buffer.alloc(4096);
  p.write('RSTR', 0, 'latin1');
  p.writeUInt16LE(0x1e, 4); // usa_ofs
  p.writeUInt16LE(9, 6); // usa_count
  p.writeUInt32LE(4096, 0x10); // system_page_size
  p.writeUInt32LE(4096, 0x14); // log_page_size
  p.writeUInt16LE(0x30, 0x18); // restart_area_offset
  p.writeInt16LE(o.minor, 0x1a);
  p.writeInt16LE(o.major, 0x1c);
  const ra = 0x30;
  p.writeBigUInt64LE(0x100000n, ra); // current_lsn
  p.writeUInt16LE(1, ra + 8); // log_clients
  p.writeUInt16LE(o.inUse ? 0xffff : 0, ra + 10); // client_free_list
  p.writeUInt16LE(o.inUse ? 0 : 0xffff, ra + 12); // client_in_use_list
  p.writeUInt16LE(o.clean ? 0x0002 : 0, ra + 14); // flags
  p.writeUInt32LE(67 - Math.floor(Math.log2(o.fileSize) + 1), ra + 16); // seq_number_bits
  p.writeUInt16LE(0x30 + 0xa0, ra + 20); // restart_area_length
  p.writeUInt16LE(0x30, ra + 22); // client_array_offset
  p.writeBigInt64LE(BigInt(o.fileSize), ra + 24);
  p.writeUInt16LE(0x30, ra + 36); // log_record_header_length
  p.writeUInt16LE(0x40, ra + 38); // log_page_data_offset
  p.writeUInt32LE(1, ra + 40);
  const client = ra + 0x30;
  p.writeUInt16LE(0xffff, client + 16); // prev_client
  p.writeUInt16LE(0xffff, client + 18); // next_client
  p.writeUInt32LE(8, client + 28); // client_name_length
  p.write('NTFS', client + 32, 'utf16le');
  const usn = 1;
  p.writeUInt16LE(usn, 0x1e);
  for (let i = 1; i <= 8; i++) {
    const end = i * 512 - 2;
    p.copy(p, 0x1e + i * 2, end, end + 2);
    p.writeUInt16LE(usn, end);
  }
  return p;
}

describe('ntfs driver: what Windows left unfinished, and tolerated damage', function () {
  this.timeout(300_000);
  let why: string | undefined;
  let base: string;
  before(async function () {
    why = await ntfs3gUnavailable();
    if (why) {
      console.log(`      ntfs-3g cannot be used here (${why}): skipping`);
      this.skip();
    }
    base = await mkntfs(join(scratchDir('ntfs-state-base'), 'base.img'), { sizeMiB: 48, label: 'Windows' });
    await withNtfs3g(base, { readWrite: true }, async (m) => {
      await writeFile(join(m, 'pagefile.sys'), pseudoRandom(100_000, 1));
      await writeFile(join(m, 'notes.txt'), 'hello\n');
    });
  });

  it('a clean volume: exact, no warnings, and ntfs-3g mounts it read-write', async () => {
    const { fs, close } = await openFile(base);
    try {
      assert.deepEqual(fs.warnings, []);
      assert.equal((await fs.statfs()).exact, true);
      assert.equal(fs.mountState.logFile.state, 'empty');
      assert.equal(fs.mountState.hibernation, 'none');
    } finally {
      await close();
    }
    assert.equal(await ntfs3gRefusal(await copyOf(base, 'clean.img')), undefined);
  });

  for (const [magic, state, refused] of [['HIBR', 'hibernated', true], ['hibr', 'hibernated', true], ['WAKE', 'woken', false]] as const) {
    it(`hiberfil.sys with a ${magic} header: ${state}, statfs inexact (ntfs-3g ${refused ? 'refuses' : 'allows'} read-write)`, async () => {
      const image = await copyOf(base, `hiber-${magic}.img`);
      await withNtfs3g(image, { readWrite: true }, (m) => writeFile(join(m, 'hiberfil.sys'), Buffer.concat([Buffer.from(magic), pseudoRandom(300_000, 2)])));
      await guardImages([image], async () => {
        const { fs, close } = await openFile(image);
        try {
          assert.equal(fs.mountState.hibernation, state);
          const s = await fs.statfs();
          assert.equal(s.exact, false);
          assert.match(s.reason!, /hiberfil\.sys/);
          assert.ok(fs.warnings.some((w) => /hiberfil\.sys/.test(w)));
          const theirs = await ntfs3gStatfs(image);
          assert.deepEqual([s.blocks, s.bfree, s.files, s.ffree], [theirs.blocks, theirs.bfree, theirs.files, theirs.ffree]);
        } finally {
          await close();
        }
      });
      const refusal = await ntfs3gRefusal(await copyOf(image, `hiber-${magic}-rw.img`));
      if (refused) assert.match(refusal ?? '', /hibernated|unsafe state/i);
      else assert.equal(refusal, undefined);
    });
  }

  // ntfs-3g resets an unclean journal by default (its "recover" option) and mounts; with norecover it refuses.
  for (const [name, page, state, message, options] of [
    ['Fast Startup (restart area 2.0)', { major: 2, minor: 0, inUse: true, clean: true }, 'cached', /Windows cache|unsafe state/i, []],
    ['an unclean shutdown (clients in use, not clean)', { major: 1, minor: 1, inUse: true, clean: false }, 'unclean', /unclean|safely|norecover/i, ['norecover']],
  ] as const) {
    it(`$LogFile showing ${name}: ${state}, statfs inexact, ntfs-3g refuses read-write`, async () => {
      const image = await copyOf(base, `logfile-${state}.img`);
      const { fs: before, close: closeBefore } = await openFile(image);
      const [ext] = await before.extents(2);
      const logSize = (await before.getattr(2)).size;
      await closeBefore();
      assert.equal(ext.kind, 'data');
      await patchFile(image, ext.physical!, restartPage({ ...page, fileSize: logSize }));
      await guardImages([image], async () => {
        const { fs, close } = await openFile(image);
        try {
          assert.equal(fs.mountState.logFile.state, state);
          const s = await fs.statfs();
          assert.equal(s.exact, false);
          assert.match(s.reason!, /\$LogFile/);
        } finally {
          await close();
        }
      });
      assert.match((await ntfs3gRefusal(await copyOf(image, `logfile-${state}-rw.img`), [...options])) ?? '', message);
    });
  }

  it('a clean $LogFile restart page (version 1.1, clean flag) is clean', async () => {
    const image = await copyOf(base, 'logfile-clean.img');
    const { fs: before, close: closeBefore } = await openFile(image);
    const [ext] = await before.extents(2);
    const logSize = (await before.getattr(2)).size;
    await closeBefore();
    await patchFile(image, ext.physical!, restartPage({ major: 1, minor: 1, inUse: false, clean: true, fileSize: logSize }));
    const { fs, close } = await openFile(image);
    try {
      assert.equal(fs.mountState.logFile.state, 'clean');
      assert.equal((await fs.statfs()).exact, true);
    } finally {
      await close();
    }
    assert.equal(await ntfs3gRefusal(await copyOf(image, 'logfile-clean-rw.img')), undefined);
  });

  it('the $Volume dirty flag: dirty, statfs inexact, as ntfsinfo -m shows it', async () => {
    const image = await copyOf(base, 'dirty.img');
    const { fs: before, close: closeBefore } = await openFile(image);
    const rs = before.volume.boot.mftRecordSize;
    const recordAt = before.volume.mft.offsetOf(3)!;
    const mirrorAt = before.volume.boot.mftMirrLcn * before.volume.clusterSize + 3 * rs;
    await closeBefore();
    const rec = (await readFile(image)).subarray(recordAt, recordAt + rs);
    let at = rec.readUInt16LE(0x14);
    while (rec.readUInt32LE(at) !== 0x70) at += rec.readUInt32LE(at + 4);
    const flagsAt = at + rec.readUInt16LE(at + 0x14) + 10;
    assert.ok(flagsAt % 512 < 510, 'the flags must not sit where a fixup goes');
    const flags = Buffer.alloc(2);
    flags.writeUInt16LE(rec.readUInt16LE(flagsAt) | 1);
    // $MFTMirr must keep matching, or ntfs-3g refuses the volume altogether.
    await patchFile(image, recordAt + flagsAt, flags);
    await patchFile(image, mirrorAt + flagsAt, flags);
    await guardImages([image], async () => {
      const { fs, close } = await openFile(image);
      try {
        assert.equal(fs.mountState.dirty, true);
        assert.equal(fs.volumeInformation.flags & 1, 1);
        assert.equal(fs.volumeInformation.flags, parseInt((await ntfsinfoVolume(image)).get('Volume Flags') ?? '', 16));
        const s = await fs.statfs();
        assert.equal(s.exact, false);
        assert.match(s.reason!, /dirty/);
        const theirs = await ntfs3gStatfs(image);
        assert.deepEqual([s.blocks, s.bfree, s.files, s.ffree], [theirs.blocks, theirs.bfree, theirs.files, theirs.ffree]);
      } finally {
        await close();
      }
    });
  });

  describe('damage tolerated (in memory)', () => {
    let bytes: Buffer;
    let tree: Awaited<ReturnType<typeof walkNtfsDriver>>;
    let mftAt: number;
    let mirrAt: number;
    before(async function () {
      if (why) this.skip();
      bytes = await readFile(base);
      const fs = await NtfsFilesystem.open(new MemorySource(bytes, 'base.img'));
      tree = await walkNtfsDriver(fs);
      mftAt = fs.volume.mft.offsetOf(0)!;
      mirrAt = fs.volume.boot.mftMirrLcn * fs.volume.clusterSize;
    });

    for (const n of [0, 1, 3]) {
      it(`a torn MFT record ${n} is read from $MFTMirr, with a warning`, async () => {
        const src = new MemorySource(bytes, 'torn.img');
        // The last two bytes of the record's first sector no longer carry the update sequence number.
        const at = mftAt + n * 1024 + 510;
        src.patch(at, Buffer.from([bytes[at] ^ 0xff, bytes[at + 1]]));
        const fs = await NtfsFilesystem.open(src);
        assert.deepEqual(await walkNtfsDriver(fs), tree);
        assert.equal((await fs.getattr(n)).ino, n);
        assert.ok(fs.warnings.some((w) => w.includes(`MFT record ${n} `) && w.includes('$MFTMirr')), fs.warnings.join('; '));
      });
    }

    it('a record torn in $MFT and $MFTMirr is a checksum error, retryable only for a live image', async () => {
      const src = new MemorySource(bytes, 'torn-both.img');
      for (const base of [mftAt, mirrAt]) {
        const at = base + 3 * 1024 + 510;
        src.patch(at, Buffer.from([bytes[at] ^ 0xff, bytes[at + 1]]));
      }
      await assert.rejects(NtfsFilesystem.open(src), (e: { code: string; retryable: boolean; message: string }) => e.code === 'EFSBADCRC' && !e.retryable && /MFT record 3/.test(e.message));
      await assert.rejects(NtfsFilesystem.open(src, { live: true }), (e: { code: string; retryable: boolean }) => e.code === 'EFSBADCRC' && e.retryable);
    });

    it('an unusable boot sector is replaced by the backup in the last sector, with a warning', async () => {
      const src = new MemorySource(bytes, 'noboot.img');
      src.patch(0, Buffer.alloc(512));
      const fs = await NtfsFilesystem.open(src);
      assert.deepEqual(await walkNtfsDriver(fs), tree);
      assert.ok(fs.warnings.some((w) => /backup/.test(w)), fs.warnings.join('; '));
      const both = new MemorySource(bytes, 'noboot2.img');
      both.patch(0, Buffer.alloc(512));
      both.patch(bytes.length - 512, Buffer.alloc(512));
      await assert.rejects(NtfsFilesystem.open(both), (e: { code: string; message: string }) => e.code === 'EFSCORRUPTED' && /boot sector/.test(e.message) && /noboot2\.img/.test(e.message));
    });
  });
});
