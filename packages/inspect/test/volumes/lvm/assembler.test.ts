/**
 * The assembler's judgement over metadata copies and what it cannot read,
 * on VGs made with the real tools and then changed in memory the way disks
 * go wrong: a PV that missed an update (its older copy is ignored), a copy
 * torn by a write (checksum mismatch: ignored when another copy is good,
 * else a retryable problem naming the PV), copies that disagree at one
 * seqno, segment types guestlens does not read, a snapshot, a PV that holds
 * no metadata given alone. Every problem names the device, and the rest of
 * the guest is still listed.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { guestDf, openGuest, type Guest, type ImageOpener } from '../../../src/index.ts';
import { findLabel } from '../../../src/volumes/lvm/label.ts';
import { LABEL, MDA_HEADER, lvmCrc } from '../../../src/volumes/lvm/layout.ts';
import { LvmFixture, lvPieces, lvmUnavailable, type VgLayout } from '../../../../../test/support/lvm.ts';
import { fakeId, insertLv } from '../../../../../test/support/lvmGuest.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';

const MiB = 1024 * 1024;

/** Where the committed metadata text of a PV (at `pv` in `disk`) lies. */
function copyPlace(disk: Buffer, pv = 0): { header: number; text: number; size: number } {
  const found = findLabel(disk.subarray(pv, pv + 2048))!;
  const pvHeader = pv + found.sector * 512 + found.label.readUInt32LE(LABEL.offset_xl);
  // First data area, its terminator, then the first metadata area.
  const header = pv + Number(disk.readBigUInt64LE(pvHeader + 40 + 32));
  const slot = header + MDA_HEADER.raw_locns;
  return { header, text: header + Number(disk.readBigUInt64LE(slot)), size: Number(disk.readBigUInt64LE(slot + 8)) };
}

/** Rewrite a PV's committed text in place (LVM writes it without indentation), with CRCs recomputed as LVM would (or left stale: a torn write). */
function rewriteCopy(disk: Buffer, edit: (text: string) => string, options: { pv?: number; fixCrc?: boolean } = {}): void {
  const place = copyPlace(disk, options.pv);
  const old = disk.toString('latin1', place.text, place.text + place.size - 1);
  const text = Buffer.from(`${edit(old)}\0`, 'latin1');
  text.copy(disk, place.text);
  if (options.fixCrc === false) return;
  const slot = place.header + MDA_HEADER.raw_locns;
  disk.writeBigUInt64LE(BigInt(text.length), slot + 8);
  disk.writeUInt32LE(lvmCrc(text), slot + 16);
  disk.writeUInt32LE(lvmCrc(disk.subarray(place.header + 4, place.header + 512)), place.header);
}

function memoryOpener(disks: Map<string, Buffer>): ImageOpener {
  return async (spec) => ({ source: new MemorySource(disks.get(spec.path)!, spec.path), format: 'raw', close: async () => {} });
}

async function withMemoryGuest<T>(disks: Map<string, Buffer>, names: string[], fn: (g: Guest) => Promise<T>): Promise<T> {
  const g = await openGuest(names, { overlay: false, openImage: memoryOpener(disks) });
  try {
    return await fn(g);
  } finally {
    await g.close();
  }
}

describe('lvm: metadata copies and what cannot be read (real VGs, changed in memory)', function () {
  this.timeout(180000);
  let dir: string;
  /** Disk images of a two-PV VG: a (linear, pv0), b (linear, pv1), s (striped over both). */
  let base: Map<string, Buffer>;
  /** pv1's disk before the last update (a PV that missed it). */
  let staleB: Buffer;

  before(async function () {
    const why = await lvmUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    dir = scratchDir('lvm-assembler');
    const files = [join(dir, 'a.img'), join(dir, 'b.img')];
    for (const f of files) await sh('truncate', ['-s', String(24 * MiB), f]);
    const f = await LvmFixture.create('edgevg', files.map((file) => ({ file, offset: 0, size: 24 * MiB })));
    try {
      await f.lvcreate(['-n', 'a', '-L', '4m', 'edgevg', f.devices[0]]);
      await f.lvcreate(['-n', 'b', '-L', '4m', 'edgevg', f.devices[1]]);
      staleB = await readFile(files[1]);
      await f.lvcreate(['-n', 's', '-i', '2', '-I', '64k', '-L', '8m', 'edgevg']);
    } finally {
      await f.detach();
    }
    base = new Map([
      ['a.img', await readFile(files[0])],
      ['b.img', await readFile(files[1])],
    ]);
  });

  const copy = (m: Map<string, Buffer>) => new Map([...m].map(([k, v]) => [k, Buffer.from(v)]));

  it('reads the VG from both disks as they are', async () => {
    await withMemoryGuest(base, ['a.img', 'b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).map((f) => f.device), ['/dev/sda', '/dev/sdb', '/dev/edgevg/a', '/dev/edgevg/b', '/dev/edgevg/s']);
      assert.deepEqual(g.warnings, []);
    });
  });

  it('ignores the older copy of a PV that missed the last update (highest seqno wins), in either disk order', async () => {
    const disks = new Map([
      ['a.img', base.get('a.img')!],
      ['b.img', staleB],
    ]);
    for (const order of [['a.img', 'b.img'], ['b.img', 'a.img']]) {
      await withMemoryGuest(disks, order, async (g) => {
        const lvs = (await g.filesystems()).filter((f) => f.kind === 'logical-volume').map((f) => f.device);
        assert.deepEqual(lvs, ['/dev/edgevg/a', '/dev/edgevg/b', '/dev/edgevg/s']);
        assert.deepEqual(g.warnings, []);
      });
    }
    // Given alone, the stale PV's own copy is all there is: it is used (the LV made later is unknown to it).
    await withMemoryGuest(new Map([['b.img', staleB]]), ['b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).map((f) => f.device), ['/dev/sda', '/dev/edgevg/b']);
      assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/edgevg/a']);
    });
  });

  it('ignores a torn copy when another PV holds a good one; a torn only copy is a retryable problem naming the PV', async () => {
    const disks = copy(base);
    rewriteCopy(disks.get('a.img')!, (t) => t.replace('seqno', 'seqnO'), { fixCrc: false });
    await withMemoryGuest(disks, ['a.img', 'b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).filter((f) => f.kind === 'logical-volume').length, 3);
      assert.deepEqual(g.warnings, []);
    });
    await withMemoryGuest(disks, ['a.img'], async (g) => {
      const list = await g.filesystems();
      assert.deepEqual(list.map((f) => [f.device, f.consumedBy]), [['/dev/sda', undefined]]);
      assert.equal(g.warnings.length, 1);
      assert.equal(g.warnings[0].device, '/dev/sda');
      assert.equal(g.warnings[0].retryable, true);
      assert.match(g.warnings[0].message, /volume group cannot be read: checksum mismatch in the LVM2 metadata text/);
      const df = await guestDf(g);
      assert.deepEqual(df.problems.map((p) => [p.device, p.retryable]), [['/dev/sda', true]]);
      assert.match(df.problems[0].message, /checksum mismatch/);
    });
  });

  it('names every LV of a VG whose copies disagree at the same seqno, and reads none of it', async () => {
    const disks = copy(base);
    rewriteCopy(disks.get('b.img')!, (t) => t.replace('creation_host = ', 'creation_host = "other" #'));
    await withMemoryGuest(disks, ['a.img', 'b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).map((f) => f.device), ['/dev/sda', '/dev/sdb']);
      assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/edgevg/a', '/dev/edgevg/b', '/dev/edgevg/s']);
      for (const w of g.warnings) assert.match(w.message, /metadata copies of volume group edgevg disagree: \/dev\/sda and \/dev\/sdb both hold seqno \d+/);
      const df = await guestDf(g);
      assert.equal(df.problems.length, 3);
    });
  });

  it('names an LV of a segment type it does not read, and reads the others', async () => {
    const disks = copy(base);
    for (const name of ['a.img', 'b.img']) rewriteCopy(disks.get(name)!, (t) => t.replace(/(\ns \{[^]*?type = )"striped"/, '$1"frobnicate"'));
    await withMemoryGuest(disks, ['a.img', 'b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).filter((f) => f.kind === 'logical-volume').map((f) => f.device), ['/dev/edgevg/a', '/dev/edgevg/b']);
      assert.equal(g.warnings.length, 1);
      assert.equal(g.warnings[0].device, '/dev/edgevg/s');
      assert.match(g.warnings[0].message, /segment1 \(extents 0-1\) is of type "frobnicate", which guestlens does not read/);
    });
  });

  it('names an LV whose segment lies past the end of its PV, and an LV whose metadata is malformed', async () => {
    const disks = copy(base);
    for (const name of ['a.img', 'b.img']) {
      rewriteCopy(disks.get(name)!, (t) =>
        t.replace(/(\na \{[^]*?stripes = \[\s*"pv0", )\d+/, '$14000').replace(/(\nb \{[^]*?)segment_count = 1/, '$1segment_count = 2'),
      );
    }
    await withMemoryGuest(disks, ['a.img', 'b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).filter((f) => f.kind === 'logical-volume').map((f) => f.device), ['/dev/edgevg/s']);
      assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/edgevg/a', '/dev/edgevg/b']);
      assert.match(g.warnings[0].message, /uses extents 4000-4000 of physical volume pv0, which has \d+/);
      assert.match(g.warnings[1].message, /segment_count is 2 but there are 1 segments/);
    });
  });

  it('names an LV whose extents lie past the end of a disk image shorter than its VG says', async () => {
    const disks = copy(base);
    disks.set('b.img', disks.get('b.img')!.subarray(0, 6 * MiB));
    await withMemoryGuest(disks, ['a.img', 'b.img'], async (g) => {
      assert.deepEqual((await g.filesystems()).filter((f) => f.kind === 'logical-volume').map((f) => f.device), ['/dev/edgevg/a', '/dev/edgevg/b']);
      assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/edgevg/s']);
      assert.match(g.warnings[0].message, /uses bytes \d+-\d+ of physical volume pv1 \(b.img\), which is only 6291456 bytes: the disk image is shorter than its volume group says/);
    });
  });

  it('hands back a PV whose VG cannot be read at all, so df still reports it', async () => {
    const disks = copy(base);
    for (const name of ['a.img', 'b.img']) rewriteCopy(disks.get(name)!, (t) => t.replace('physical_volumes', 'physical_volumez'));
    await withMemoryGuest(disks, ['a.img', 'b.img'], async (g) => {
      const list = await g.filesystems();
      assert.deepEqual(list.map((f) => [f.device, f.type, f.consumedBy]), [
        ['/dev/sda', 'LVM2_member', undefined],
        ['/dev/sdb', 'LVM2_member', undefined],
      ]);
      const df = await guestDf(g);
      assert.deepEqual(df.problems.map((p) => p.device), ['/dev/sda', '/dev/sdb']);
      for (const p of df.problems) assert.match(p.message, /LVM2 volume group metadata, volume group edgevg \(line \d+\): no physical_volumes section/);
    });
  });

  describe('snapshots and PVs without metadata (layouts vgcfgrestore writes)', () => {
    let snap: Map<string, Buffer>;
    let layout: VgLayout;

    before(async () => {
      const files = [join(dir, 's0.img'), join(dir, 's1.img')];
      for (const f of files) await sh('truncate', ['-s', String(24 * MiB), f]);
      const f = await LvmFixture.create('snapvg', [
        { file: files[0], offset: 0, size: 24 * MiB },
        { file: files[1], offset: 0, size: 24 * MiB, pvcreate: ['--metadatacopies', '0'] },
      ]);
      try {
        await f.lvcreate(['-n', 'origin', '-L', '4m', 'snapvg', f.devices[0]]);
        await f.lvcreate(['-n', 'snap', '-L', '4m', 'snapvg', f.devices[0]]);
        await f.lvcreate(['-n', 'other', '-L', '4m', 'snapvg', f.devices[1]]);
        // An old-style mirror (segment type "mirror", core log), its legs renamed into LVM's reserved names.
        await f.lvcreate(['-n', 'mir.mimage.0', '-L', '4m', 'snapvg', f.devices[0]]);
        await f.lvcreate(['-n', 'mir.mimage.1', '-L', '4m', 'snapvg', f.devices[1]]);
        // An old-style snapshot: the COW LV is hidden and a snapshotN LV ties it to its origin (as lvcreate -s writes it).
        const mirrored = (t: string) => {
          let out = t;
          for (const i of [0, 1]) {
            out = out.replace(`\t\tmir.mimage.${i} {`, `\t\tmir_mimage_${i} {`);
            out = out.replace(new RegExp(`(\\t\\tmir_mimage_${i} \\{[^]*?status = \\["READ", "WRITE"), "VISIBLE"\\]`), '$1]');
          }
          return insertLv(
            out,
            `\t\tmir {\n\t\t\tid = "${fakeId('mir')}"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\n` +
              '\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 1\n\n\t\t\t\ttype = "mirror"\n\t\t\t\tmirror_count = 2\n\t\t\t\tregion_size = 1024\n\n' +
              '\t\t\t\tmirrors = [\n\t\t\t\t\t"mir_mimage_0", 0,\n\t\t\t\t\t"mir_mimage_1", 0\n\t\t\t\t]\n\t\t\t}\n\t\t}\n\n',
          );
        };
        await f.restore(join(dir, 'snap.txt'), (t) =>
          insertLv(
            mirrored(t).replace(/(\n\t\tsnap \{[^]*?status = \["READ", "WRITE"), "VISIBLE"\]/, '$1]'),
            `\t\tsnapshot0 {\n\t\t\tid = "${fakeId('snapshot0')}"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\n` +
              '\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 1\n\n\t\t\t\ttype = "snapshot"\n\t\t\t\tchunk_size = 8\n\t\t\t\torigin = "origin"\n\t\t\t\tcow_store = "snap"\n\t\t\t}\n\t\t}\n\n',
          ),
        );
        const lvs = await f.lvm('lvs', ['--reportformat', 'json', '-o', 'lv_name,origin,segtype', 'snapvg']);
        assert.match(lvs, /"lv_name":"snap", "origin":"origin"/, 'LVM sees the snapshot');
        assert.match(lvs, /"lv_name":"mir", "origin":"", "segtype":"mirror"/, 'LVM sees the mirror');
        layout = await f.layout();
      } finally {
        await f.detach();
      }
      snap = new Map([
        ['s0.img', await readFile(files[0])],
        ['s1.img', await readFile(files[1])],
      ]);
      // Each leg of the mirror gets its own pattern, so the bytes say which leg was read.
      for (const leg of [0, 1]) {
        for (const piece of lvPieces(layout, 'mir', leg)) snap.get(basename(piece.file))!.fill(0x10 + leg, piece.fileOffset, piece.fileOffset + piece.length);
      }
    });

    it('reads an old-style mirror from its first leg, and from the second when LVM marked the first leg\'s PV missing', async () => {
      await withMemoryGuest(snap, ['s0.img', 's1.img'], async (g) => {
        const mir = (await g.filesystem('/dev/snapvg/mir'))!;
        assert.ok((await mir.source.read(0, mir.size)).every((b) => b === 0x10));
      });
      const missing = copy(snap);
      rewriteCopy(missing.get('s0.img')!, (t) => t.replace(/(\npv0 \{[^]*?flags = )\[\]/, '$1["MISSING"]'));
      await withMemoryGuest(missing, ['s0.img', 's1.img'], async (g) => {
        const mir = (await g.filesystem('/dev/snapvg/mir'))!;
        assert.ok((await mir.source.read(0, mir.size)).every((b) => b === 0x11));
        assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/snapvg/origin', '/dev/snapvg/snap']);
        assert.match(g.warnings[0].message, /needs physical volume pv0 \(UUID [\w-]+, last seen as "\/dev\/loop\d+", marked missing by LVM\)/);
      });
    });

    it('reads the origin as it is and names the snapshot as unreadable', async () => {
      await withMemoryGuest(snap, ['s0.img', 's1.img'], async (g) => {
        assert.deepEqual((await g.filesystems()).filter((f) => f.kind === 'logical-volume').map((f) => f.device), ['/dev/snapvg/mir', '/dev/snapvg/origin', '/dev/snapvg/other']);
        assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/snapvg/snap']);
        assert.match(g.warnings[0].message, /copy-on-write snapshot of snapvg\/origin, which guestlens does not read \(the origin \/dev\/snapvg\/origin is read as it is now\)/);
      });
    });

    it('reports a PV made with --metadatacopies 0 given without the PVs that hold its metadata', async () => {
      await withMemoryGuest(snap, ['s1.img'], async (g) => {
        assert.deepEqual((await g.filesystems()).map((f) => [f.device, f.consumedBy]), [['/dev/sda', undefined]]);
        const df = await guestDf(g);
        assert.equal(df.problems.length, 1);
        assert.match(df.problems[0].message, /holds no copy of its volume group's metadata.*give every disk of the guest/);
      });
    });
  });
});
