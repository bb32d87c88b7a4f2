/**
 * Hostile FAT volumes: cluster chains that loop, run past the data area,
 * cross free clusters, end early or are shared by two files; directories
 * that point at their ancestors, start at cluster 0 or lack "." and "..";
 * every BPB check the kernel makes at mount; FAT32's backup boot sector and
 * FSInfo; an image cut short; and a few thousand mutated volumes (longer
 * runs: `pnpm -s fuzz --target fat`). Every failure is a typed
 * FilesystemError naming the image, the structure and the byte offset; no
 * case loops or grows memory without bound.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { FatError, FatFilesystem } from '../../../src/filesystems/fat/index.ts';
import { FilesystemError } from '../../../src/filesystems/errors.ts';
import { BPB, EBPB32, FSINFO } from '../../../src/filesystems/fat/layout.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { fsckCounts } from './fatFixtures.ts';
import { FUZZ_LIMITS, buildFuzzImages, runFuzz, type FuzzImage } from './fatFuzzer.ts';

const CASES = Number(process.env.FAT_FUZZ_CASES ?? 1250);

/** A volume image under edit: a copy of the clean bytes and what the clean driver says about it. */
class Edit {
  readonly data: Buffer;
  private constructor(
    readonly clean: FatFilesystem,
    base: Buffer,
  ) {
    this.data = Buffer.from(base);
  }

  static async of(img: FuzzImage): Promise<Edit> {
    return new Edit(await FatFilesystem.open(new MemorySource(img.data, img.name)), img.data);
  }

  get vol() {
    return this.clean.volume;
  }

  async ino(path: string): Promise<number> {
    let ino = this.clean.rootIno;
    for (const part of path.split('/').filter(Boolean)) ino = (await this.clean.lookup(ino, part))!;
    return ino;
  }

  /** The start cluster of the entry at `path`. */
  async start(path: string): Promise<number> {
    const at = (await this.ino(path)) * 32;
    return this.data.readUInt16LE(at + 26) + (this.vol.geometry.fatBits === 32 ? this.data.readUInt16LE(at + 20) * 65536 : 0);
  }

  fatOffset(cluster: number): number {
    return this.vol.geometry.fatStart * this.vol.sectorSize + (cluster * this.vol.geometry.fatBits) / 8;
  }

  getFat(cluster: number): number {
    return this.vol.geometry.fatBits === 32 ? this.data.readUInt32LE(this.fatOffset(cluster)) & 0x0fffffff : this.data.readUInt16LE(this.fatOffset(cluster));
  }

  setFat(cluster: number, value: number): void {
    if (this.vol.geometry.fatBits === 32) this.data.writeUInt32LE(value, this.fatOffset(cluster));
    else this.data.writeUInt16LE(value & 0xffff, this.fatOffset(cluster));
  }

  eoc(): number {
    return this.vol.geometry.fatBits === 32 ? 0x0ffffff8 : 0xfff8;
  }

  /** The clusters of a chain, from the clean FAT. */
  chain(start: number): number[] {
    const out = [start];
    for (let c = this.getFat(start); c >= 2 && c < this.vol.geometry.maxCluster && out.length < 100000; c = this.getFat(c)) out.push(c);
    return out;
  }

  async open(options: { live?: boolean; size?: number; useBackupBootSector?: boolean } = {}): Promise<FatFilesystem> {
    const source = new MemorySource(this.data, 'hostile.img', options.size ?? this.data.length, 512, 200_000);
    return FatFilesystem.open(source, { limits: FUZZ_LIMITS, live: options.live, useBackupBootSector: options.useBackupBootSector });
  }
}

/** Rejects with a FAT error of `code` whose message matches `re` and names the image. */
async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp): Promise<FilesystemError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof FatError, `not a FatError: ${String(caught)}`);
  const err = caught as FilesystemError;
  assert.equal(err.code, code, err.message);
  assert.match(err.message, re);
  assert.ok(err.message.startsWith('hostile.img: '), err.message);
  assert.equal(err.userFacing, true);
  return err;
}

describe('FAT driver: hostile volumes', function () {
  this.timeout(600_000);
  let images: FuzzImage[];
  let fat16: FuzzImage;
  let fat32: FuzzImage;

  before(async () => {
    images = await buildFuzzImages();
    fat16 = images.find((i) => i.name === 'fuzz-fat16')!;
    fat32 = images.find((i) => i.name === 'fuzz-fat32')!;
  });

  it('a directory whose chain loops is an error, retryable only when live; the rest of the tree reads', async () => {
    const ed = await Edit.of(fat32);
    const clusters = ed.chain(await ed.start('/many'));
    assert.ok(clusters.length > 1, 'fixture: /many fits one cluster');
    ed.setFat(clusters[clusters.length - 1], clusters[0]);
    for (const live of [false, true]) {
      const fs = await ed.open({ live });
      const many = await fs.lookup(fs.rootIno, 'many');
      const err = await rejectsWith(fs.getattr(many!), 'EFSCORRUPTED', /cluster chain of directory entry at byte \d+.*longer than the \d+ clusters of the volume, so it loops/);
      assert.equal(err.retryable, live);
      await rejectsWith(fs.readdir(many!), 'EFSCORRUPTED', /loops/);
      assert.ok((await fs.readdir((await fs.lookup(fs.rootIno, "EFI"))!)).length > 0);
    }
  });

  it('a file whose chain loops reads its clusters again, as the kernel does, until the chain is longer than the volume', async () => {
    const ed = await Edit.of(fat32);
    const path = '/sizes/size-100000.bin';
    const clusters = ed.chain(await ed.start(path));
    ed.setFat(clusters[1], clusters[0]); // 0 -> 1 -> 0 -> 1 ...
    const fs = await ed.open();
    const ino = await fs.lookup((await fs.lookup(fs.rootIno, 'sizes'))!, 'size-100000.bin');
    const cs = fs.volume.clusterSize;
    const got = await fs.read(ino!, 0, 4 * cs);
    const c0 = ed.data.subarray(fs.volume.clusterOffset(clusters[0]), fs.volume.clusterOffset(clusters[0]) + cs);
    const c1 = ed.data.subarray(fs.volume.clusterOffset(clusters[1]), fs.volume.clusterOffset(clusters[1]) + cs);
    assert.deepEqual(got, Buffer.concat([c0, c1, c0, c1]));
    // A size that needs more clusters than the volume has: the loop shows.
    const at = ino! * 32;
    ed.data.writeUInt32LE(0xffffffff, at + 28);
    const big = await ed.open();
    await rejectsWith(big.read(ino!, 0xffffffff - 10, 10), 'EFSCORRUPTED', /so it loops/);
  });

  it('chains that leave the data area, cross a free cluster or end before the size are errors at the FAT entry', async () => {
    const ed = await Edit.of(fat16);
    const path = '/EFI/BOOT/BOOTX64.EFI';
    const clusters = ed.chain(await ed.start(path));
    const ino = await ed.ino(path);
    const cs = ed.vol.clusterSize;
    for (const [value, re] of [
      [ed.vol.geometry.maxCluster + 3, /FAT entry \d+ \(byte offset \d+\).*points to cluster \d+, outside the data area/],
      [1, /points to cluster 1, outside the data area/],
      [0, /cluster \d+ is marked free but the cluster chain of directory entry at byte \d+ goes through it/],
      [ed.eoc(), /ends after 1 clusters, but the file's size of \d+ bytes needs 4.*request beyond EOF/],
    ] as const) {
      ed.setFat(clusters[0], value);
      const fs = await ed.open();
      // The first cluster still reads; the second needs the damaged entry.
      assert.equal((await fs.read(ino, 0, cs)).length, cs);
      await rejectsWith(fs.read(ino, 0, 2 * cs), 'EFSCORRUPTED', re);
      await rejectsWith(fs.extents!(ino), 'EFSCORRUPTED', re);
      ed.setFat(clusters[0], clusters[1]);
    }
    // A start cluster outside the data area.
    ed.data.writeUInt16LE(0xfffe, ino * 32 + 26);
    await rejectsWith((await ed.open()).read(ino, 0, 1), 'EFSCORRUPTED', /starts at cluster 65534, outside the data area/);
  });

  it('two files sharing clusters (a cross-link) both read the shared bytes, as the kernel reads them', async () => {
    const ed = await Edit.of(fat16);
    const a = await ed.ino('/EFI/BOOT/BOOTX64.EFI');
    const b = await ed.ino('/EFI/debian/grubx64.efi');
    ed.data.writeUInt16LE(ed.data.readUInt16LE(a * 32 + 26), b * 32 + 26);
    const fs = await ed.open();
    const sb = (await fs.getattr(b)).size;
    assert.deepEqual(await fs.read(b, 0, sb), (await fs.read(a, 0, sb)));
  });

  it('a directory that contains its own ancestor is listed but not descended into twice by inodes()', async () => {
    const ed = await Edit.of(fat16);
    const deepStart = await ed.start('/deep');
    const inner = await ed.ino('/deep/level01/level02');
    ed.data.writeUInt16LE(deepStart, inner * 32 + 26);
    const fs = await ed.open();
    // level02 now shows /deep's contents: level01 again, without end, for a path walker.
    const l2 = await fs.readdir(inner);
    assert.deepEqual(l2.map((e) => e.name), ['level01']);
    const inos: number[] = [];
    for await (const e of fs.inodes!()) inos.push(e.ino);
    assert.equal(new Set(inos).size, inos.length);
    assert.ok(inos.includes(inner));
  });

  it('subdirectories starting at cluster 0 or lacking "." and ".." are the kernel\'s corrupted directories', async () => {
    const ed = await Edit.of(fat16);
    const efi = await ed.ino('/EFI');
    const boot = await ed.ino('/EFI/BOOT');
    const debianStart = await ed.start('/EFI/debian');
    ed.data.writeUInt16LE(0, boot * 32 + 26);
    ed.data.fill(0, ed.vol.clusterOffset(debianStart), ed.vol.clusterOffset(debianStart) + 64);
    const fs = await ed.open();
    assert.deepEqual((await fs.readdir(efi)).map((e) => e.name).sort(), ['BOOT', 'debian']);
    await rejectsWith(fs.getattr(boot), 'EFSCORRUPTED', /starts at cluster 0.*invalid i_start/);
    await rejectsWith(fs.getattr(await ed.ino('/EFI/debian')), 'EFSCORRUPTED', /lacks its "\." and "\.\." entries.*invalid entries/);
  });

  it('refuses every BPB the kernel refuses, naming the field and its byte offset', async () => {
    const cases: Array<[string, (d: Buffer) => void, RegExp]> = [
      ['sector size', (d) => d.writeUInt16LE(1000, BPB.BPB_BytsPerSec), /BPB_BytsPerSec \(byte offset 11\).*bogus logical sector size 1000/],
      ['sector size 8192', (d) => d.writeUInt16LE(8192, BPB.BPB_BytsPerSec), /bogus logical sector size 8192/],
      ['sectors per cluster', (d) => (d[BPB.BPB_SecPerClus] = 3), /BPB_SecPerClus \(byte offset 13\).*bogus sectors per cluster 3/],
      ['sectors per cluster 0', (d) => (d[BPB.BPB_SecPerClus] = 0), /bogus sectors per cluster 0/],
      ['reserved', (d) => d.writeUInt16LE(0, BPB.BPB_RsvdSecCnt), /BPB_RsvdSecCnt.*bogus number of reserved sectors/],
      ['FATs', (d) => (d[BPB.BPB_NumFATs] = 0), /BPB_NumFATs.*bogus number of FAT structures/],
      ['media', (d) => (d[BPB.BPB_Media] = 0x12), /BPB_Media \(byte offset 21\).*invalid media value \(0x12\)/],
      ['root entries', (d) => d.writeUInt16LE(513, BPB.BPB_RootEntCnt), /BPB_RootEntCnt.*bogus number of directory entries \(513\)/],
      ['FAT size', (d) => (d.writeUInt16LE(0, BPB.BPB_FATSz16), d.writeUInt32LE(0, EBPB32.BPB_FATSz32)), /bogus number of FAT sectors/],
      [
        'cluster count',
        (d) => {
          d[BPB.BPB_SecPerClus] = 1;
          d.writeUInt16LE(0, BPB.BPB_TotSec16);
          d.writeUInt32LE(0x00ffffff, BPB.BPB_TotSec32);
          d.writeUInt16LE(300, BPB.BPB_FATSz16);
        },
        /count of clusters too big \(76798\)/,
      ],
    ];
    for (const [what, edit, re] of cases) {
      const ed = await Edit.of(fat16);
      edit(ed.data);
      const err = await rejectsWith(ed.open(), 'EFSCORRUPTED', re);
      assert.match(err.message, /boot sector/, what);
      assert.match(err.message, /fsck\.fat -n/, what);
    }
    // FAT32: a root cluster outside the data area fails the mount, as fat_read_root fails.
    const ed = await Edit.of(fat32);
    ed.data.writeUInt32LE(0x0ffffff0, EBPB32.BPB_RootClus);
    await rejectsWith(ed.open(), 'EFSCORRUPTED', /cluster chain of root directory.*starts at cluster 268435440/);
    // Too small to be a FAT volume at all.
    await assert.rejects(FatFilesystem.open(new MemorySource(Buffer.alloc(100), 'tiny.img')), { code: 'EINVAL' });
  });

  it('FAT32: a damaged sector 0 points at the backup boot sector, which opens it; a differing backup is a warning', async () => {
    const ed = await Edit.of(fat32);
    ed.data[BPB.BPB_Media] = 0;
    const err = await rejectsWith(ed.open(), 'EFSCORRUPTED', /invalid media value \(0x00\).*backup boot sector \(sector 6\) looks valid.*useBackupBootSector/);
    assert.equal(err.retryable, false);
    const fs = await ed.open({ useBackupBootSector: true });
    assert.match(fs.warnings.join('\n'), /read from the backup boot sector \(sector 6\)/);
    assert.deepEqual((await fs.readdir(fs.rootIno)).map((e) => e.name), (await ed.clean.readdir(ed.clean.rootIno)).map((e) => e.name));
    assert.deepEqual(await fs.statfs(), await ed.clean.statfs());

    const differ = await Edit.of(fat32);
    differ.data[6 * 512 + BPB.BPB_SecPerClus] = 8;
    assert.match((await differ.open()).warnings.join('\n'), /backup boot sector \(sector 6\) differs from sector 0 from byte 13 on; the kernel uses sector 0/);
  });

  it('FAT32 FSInfo: a bad signature is a warning, a wrong free count is ignored (statfs scans the FAT), a missing sector fails', async () => {
    const fsinfo = 512; // sector 1
    const ed = await Edit.of(fat32);
    ed.data.writeUInt32LE(5, fsinfo + FSINFO.FSI_Free_Count);
    const fs = await ed.open();
    assert.equal(fs.bootSector.fsinfoFreeCount, 5);
    assert.deepEqual(await fs.statfs(), await ed.clean.statfs());
    ed.data.writeUInt32LE(0x12345678, fsinfo + FSINFO.FSI_LeadSig);
    const warned = await ed.open();
    assert.match(warned.warnings.join('\n'), /invalid FSInfo signature 0x12345678, 0x61417272 \(sector 1\); the kernel warns and mounts/);
    assert.deepEqual(await warned.statfs(), await ed.clean.statfs());
    // FSInfo at the last sector a 16-bit field can name, on a device that ends just before it.
    ed.data.writeUInt16LE(0xffff, EBPB32.BPB_FSInfo);
    await rejectsWith(ed.open({ size: 0xffff * 512 }), 'EFSCORRUPTED', /FSInfo sector 65535.*beyond the end of the device/);
  });

  it('an image cut short fails where a read would leave it, with the structure named', async () => {
    const ed = await Edit.of(fat16);
    const ino = await ed.ino('/sizes/size-100000.bin');
    const start = await ed.start('/sizes/size-100000.bin');
    const cut = ed.vol.clusterOffset(start) + 1000;
    const fs = await ed.open({ size: cut });
    await rejectsWith(fs.read(ino, 0, 100000), 'EFSCORRUPTED', /clusters \d+\.\.\d+ of the directory entry at byte \d+.*beyond the end of the device/);
  });

  it('a lost cluster chain is used space to the kernel (and to us) but free to fsck.fat -n', async () => {
    const ed = await Edit.of(fat16);
    const clean = await ed.clean.statfs();
    // The last cluster, free on the clean volume, marked as a one-cluster chain no file owns.
    const last = ed.vol.geometry.maxCluster - 1;
    assert.equal(ed.getFat(last), 0);
    ed.setFat(last, ed.eoc());
    const ours = await (await ed.open()).statfs();
    assert.equal(ours.bfree, clean.bfree - 1);
    const path = join(scratchDir('fat-lost'), 'lost.img');
    writeFileSync(path, ed.data);
    const fsck = await fsckCounts(path);
    assert.equal(fsck.dataClusters - fsck.usedClusters, clean.bfree, 'fsck.fat counts the lost cluster as free');
  });

  it('a FAT too small for the sectors: the kernel caps the cluster count at what the FAT holds, fsck.fat refuses', async () => {
    const ed = await Edit.of(fat16);
    const sectors = ed.data.readUInt16LE(BPB.BPB_TotSec16);
    ed.data.writeUInt16LE(0, BPB.BPB_TotSec16);
    ed.data.writeUInt32LE(sectors + 400, BPB.BPB_TotSec32);
    const size = (sectors + 400) * 512;
    const st = await (await ed.open({ size })).statfs();
    const fatEntries = (ed.data.readUInt16LE(BPB.BPB_FATSz16) * 512) / 2;
    assert.equal(st.blocks, fatEntries - 2);
    // The entries past mkfs's cluster count are 0 in the FAT: free to the kernel.
    assert.equal(st.bfree, (await ed.clean.statfs()).bfree + (fatEntries - 2 - ed.vol.geometry.totalClusters));
    const path = join(scratchDir('fat-cap'), 'cap.img');
    writeFileSync(path, Buffer.concat([ed.data, Buffer.alloc(size - ed.data.length)]));
    const r = await execa('fsck.fat', ['-n', path], { reject: false });
    assert.match(r.stdout + r.stderr, new RegExp(`Filesystem has \\d+ clusters but only space for ${fatEntries - 2} FAT entries`));
  });

  it(`survives ${CASES} mutated volumes with typed errors only, no loop, bounded memory`, async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const { failures, stats } = await runFuzz(images, CASES, 0xfa7f0220);
    const heapAfter = process.memoryUsage().heapUsed;
    console.log(`      ${stats.cases} cases, ${stats.opened} fully read; errors by code ${JSON.stringify(stats.errorsByCode)}; regions ${JSON.stringify(stats.byKind)}`);
    console.log(`      errors by structure ${JSON.stringify(stats.errorsByStructure)}`);
    if (failures.length) {
      const f = failures[0];
      assert.fail(`${failures.length} untyped failures; first: ${f.image} seed ${f.seed} mutating ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    for (const kind of ['boot sector', 'backup boot sector', 'FSInfo', 'FAT', 'root directory', 'directory']) assert.ok(stats.byKind[kind] > 0, `no ${kind} mutated`);
    // The damage was found in many kinds of structure (boot sector fields, FAT entries, chains, directory entries...).
    assert.ok(Object.keys(stats.errorsByStructure).length >= 6, `errors named too few structures: ${Object.keys(stats.errorsByStructure).join(', ')}`);
    assert.ok(stats.opened > stats.cases / 4, 'too few mutated volumes were read whole');
    assert.ok(heapAfter - heapBefore < 256 * 1024 * 1024, `heap grew by ${heapAfter - heapBefore} bytes`);
  });
});
