/**
 * Partition tables against the tools that wrote them: sfdisk --json and
 * sgdisk -p read the same fixtures (made here with sfdisk/sgdisk, on loop
 * devices with 4096-byte logical sectors where needed) and must agree with us
 * on every partition. The running kernel has no partition parsers built in
 * (CONFIG_MSDOS_PARTITION and CONFIG_EFI_PARTITION are off here), so
 * /sys/block cannot serve as a third opinion.
 */
import assert from 'node:assert/strict';
import { copyFile, open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { RawFileSource } from '@guestlens/qcow2-js';
import { PartitionTableError, probeFilesystem, readPartitionTable, SliceBoundsError, type Partition, type PartitionTable } from '../../src/index.ts';
import { BlockWindow as SliceSource } from '@guestlens/block';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { sh } from '../../../../test/support/run.ts';
import { MemorySource } from '../../../../test/support/memorySource.ts';
import { Prng } from '../../../../test/support/prng.ts';

interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
  bootable?: boolean;
}
interface SfdiskTable {
  label: string;
  id: string;
  sectorsize: number;
  partitions: SfdiskPartition[];
}

async function sfdiskJson(device: string): Promise<SfdiskTable> {
  return (JSON.parse(await sh('sfdisk', ['--json', device])) as { partitiontable: SfdiskTable }).partitiontable;
}

function numberOf(node: string): number {
  return Number(/(\d+)$/.exec(node)?.[1]);
}

async function readTable(path: string, sectorSize?: number): Promise<PartitionTable> {
  const src = await RawFileSource.open(path);
  try {
    return await readPartitionTable(src, { sectorSize });
  } finally {
    await src.close();
  }
}

function assertSameAsSfdisk(ours: PartitionTable, theirs: SfdiskTable): void {
  assert.equal(ours.scheme, theirs.label === 'dos' ? 'mbr' : theirs.label);
  assert.equal(ours.sectorSize, theirs.sectorsize);
  assert.equal(ours.diskId, theirs.id);
  const expected = theirs.partitions.map((p) => ({
    number: numberOf(p.node),
    startSector: p.start,
    sectorCount: p.size,
    ...(theirs.label === 'dos'
      ? { mbrType: p.type, bootable: p.bootable === true }
      : { typeGuid: p.type, uuid: p.uuid, name: p.name ?? '' }),
  }));
  const actual = ours.partitions.map((p) => ({
    number: p.number,
    startSector: p.startSector,
    sectorCount: p.sectorCount,
    ...(ours.scheme === 'mbr'
      ? { mbrType: (p.mbrType as number).toString(16), bootable: p.bootable === true }
      : { typeGuid: p.typeGuid, uuid: p.uuid, name: p.name }),
  }));
  assert.deepEqual(actual, expected);
  for (const p of ours.partitions) {
    assert.equal(p.offset, p.startSector * ours.sectorSize);
    assert.equal(p.size, p.sectorCount * ours.sectorSize);
  }
}

/** Attach `image` to a loop device with the given logical sector size, run `fn`, always detach. */
async function withLoop<T>(image: string, sectorSize: number, fn: (device: string) => Promise<T>): Promise<T> {
  const device = (await sh('losetup', ['--find', '--show', '--sector-size', String(sectorSize), image])).trim();
  try {
    return await fn(device);
  } finally {
    await execa('losetup', ['-d', device], { reject: false });
  }
}

function needRoot(ctx: Mocha.Context): void {
  if (process.getuid?.() !== 0) {
    console.log('      (skipped: 4096-byte-sector loop devices need root)');
    ctx.skip();
  }
}

const MBR_SCRIPT = [
  'label: dos',
  'label-id: 0x1a2b3c4d',
  'start=2048, size=8M, type=83, bootable',
  'size=4M, type=82',
  'size=40M, type=5',
  // Named nodes: otherwise sfdisk makes the next one primary 4 rather than logical 5.
  'disk.img5: size=6M, type=83',
  'disk.img6: size=5M, type=8e',
  'disk.img7: size=3M, type=c',
  '',
].join('\n');

describe('volumes: MBR partition tables', function () {
  let dir: string;
  before(function () {
    dir = scratchDir('mbr');
  });

  it('reads primary, extended and logical partitions (numbered from 5) as sfdisk --json lists them', async function () {
    const image = join(dir, 'disk.img');
    await writeFile(image, '');
    await truncate(image, 64 * 1024 * 1024);
    await sh('sfdisk', ['-q', image], { input: MBR_SCRIPT });
    const theirs = await sfdiskJson(image);
    const ours = await guardImages([image], () => readTable(image));
    assertSameAsSfdisk(ours, theirs);
    assert.deepEqual(ours.partitions.map((p) => [p.number, p.kind]), [[1, 'primary'], [2, 'primary'], [3, 'extended'], [5, 'logical'], [6, 'logical'], [7, 'logical']]);
    assert.deepEqual(ours.warnings, []);
  });

  it('with 4096-byte logical sectors (made by sfdisk on a 4096-sector loop device) and sectorSize 4096', async function () {
    needRoot(this);
    const image = join(dir, 'disk4k.img');
    await writeFile(image, '');
    await truncate(image, 128 * 1024 * 1024);
    const theirs = await withLoop(image, 4096, async (dev) => {
      await sh('sfdisk', ['-q', dev], { input: MBR_SCRIPT.replace('start=2048', 'start=256') });
      return sfdiskJson(dev);
    });
    assert.equal(theirs.sectorsize, 4096);
    const ours = await guardImages([image], () => readTable(image, 4096));
    assertSameAsSfdisk(ours, theirs);
    assert.equal(ours.partitions.find((p) => p.number === 5)?.offset, theirs.partitions.find((p) => numberOf(p.node) === 5)!.start * 4096);
  });

  it('truncates a partition that runs past the end of the disk and drops one that starts beyond it, with warnings', async function () {
    const mbr = Buffer.alloc(512);
    writeEntry(mbr, 0, { type: 0x83, start: 2048, count: 4096 });
    writeEntry(mbr, 1, { type: 0x83, start: 6144, count: 1_000_000 });
    writeEntry(mbr, 2, { type: 0x83, start: 5_000_000, count: 10 });
    mbr.writeUInt16LE(0xaa55, 510);
    const src = new MemorySource(mbr, 'short.img', 16 * 1024 * 1024);
    const t = await readPartitionTable(src);
    assert.deepEqual(t.partitions.map((p) => [p.number, p.startSector, p.sectorCount]), [[1, 2048, 4096], [2, 6144, 32768 - 6144]]);
    assert.equal(t.warnings.length, 2);
    assert.match(t.warnings[0], /partition 2 .* runs past the end of the disk .*truncated/);
    assert.match(t.warnings[1], /partition 3 starts at sector 5000000, beyond the end of the disk/);
  });

  it('cuts an EBR chain that loops back on itself, with a warning', async function () {
    const src = new MemorySource(Buffer.alloc(0), 'loop.img', 64 * 1024 * 1024);
    const mbr = Buffer.alloc(512);
    writeEntry(mbr, 0, { type: 0x05, start: 2048, count: 100_000 });
    mbr.writeUInt16LE(0xaa55, 510);
    src.patch(0, mbr);
    // EBR 1 at 2048 → EBR 2 at 4096 → back to EBR 1.
    src.patch(2048 * 512, ebr({ start: 1, count: 100 }, { start: 2048 }));
    src.patch(4096 * 512, ebr({ start: 1, count: 100 }, { start: 0 }));
    const t = await readPartitionTable(src);
    assert.deepEqual(t.partitions.map((p) => [p.number, p.kind, p.startSector]), [[1, 'extended', 2048], [5, 'logical', 2049], [6, 'logical', 4097]]);
    assert.equal(t.warnings.length, 1);
    assert.match(t.warnings[0], /loops back to sector 2048/);
  });

  it('stops an EBR chain that runs on (empty EBRs linking onwards, or more logical partitions than Linux numbers)', async function () {
    const src = new MemorySource(Buffer.alloc(0), 'long.img', 512 * 1024 * 1024);
    const mbr = Buffer.alloc(512);
    writeEntry(mbr, 0, { type: 0x0f, start: 2048, count: 1_000_000 });
    mbr.writeUInt16LE(0xaa55, 510);
    src.patch(0, mbr);
    for (let i = 0; i < 400; i++) src.patch((2048 + i * 8) * 512, ebr({ start: 1, count: 4 }, { start: (i + 1) * 8 }));
    const t = await readPartitionTable(src);
    const numbers = t.partitions.filter((p) => p.kind === 'logical').map((p) => p.number);
    assert.equal(numbers[0], 5);
    assert.equal(numbers[numbers.length - 1], 256);
    assert.match(t.warnings.join('\n'), /more than 256 partitions/);

    const empty = new MemorySource(Buffer.alloc(0), 'empty-ebrs.img', 512 * 1024 * 1024);
    empty.patch(0, mbr);
    for (let i = 0; i < 1000; i++) empty.patch((2048 + i) * 512, ebr(undefined, { start: i + 1 }));
    const t2 = await readPartitionTable(empty);
    assert.deepEqual(t2.partitions.map((p) => p.number), [1]);
    assert.match(t2.warnings.join('\n'), /runs on past/);
    assert.ok(empty.reads < 500, `${empty.reads} reads for a chain of empty EBRs`);
  });

  it('reads an empty MBR as a table with no partitions, and boot code (invalid boot indicators) as no table', async function () {
    const mbr = Buffer.alloc(512);
    mbr.writeUInt16LE(0xaa55, 510);
    const t = await readPartitionTable(new MemorySource(mbr, 'empty.img', 1024 * 1024));
    assert.equal(t.scheme, 'mbr');
    assert.deepEqual(t.partitions, []);
    const junk = Buffer.alloc(512, 0x41);
    junk.writeUInt16LE(0xaa55, 510);
    assert.equal((await readPartitionTable(new MemorySource(junk, 'junk.img', 1024 * 1024))).scheme, 'none');
  });
});

describe('volumes: GPT partition tables', function () {
  let dir: string;
  let gptImage: string;
  let sgdiskLines: string[];

  before(async function () {
    dir = scratchDir('gpt');
    gptImage = join(dir, 'disk.img');
    await writeFile(gptImage, '');
    await truncate(gptImage, 64 * 1024 * 1024);
    // (sgdisk -q writes nothing in this version: no -q.)
    await sh('sgdisk', [
      '--disk-guid=0D1B6E5A-7F0C-4A43-9E2B-5C8F1D2E3A4B',
      '-n', '1:2048:+8M', '-t', '1:8300', '-c', '1:root',
      '-n', '2:0:+4M', '-t', '2:8200', '-c', '2:swap space',
      '-n', '3:0:+4M', '-t', '3:ef00', '-c', '3:EFI ünïcødé',
      '-n', '5:0:+4M', '-t', '5:8e00',
      '-A', '1:set:2',
      gptImage,
    ]);
    sgdiskLines = (await sh('sgdisk', ['-p', gptImage])).split('\n');
  });

  function sgdiskRows(): Array<{ number: number; start: number; end: number; name: string }> {
    const rows = [];
    for (const line of sgdiskLines) {
      const m = /^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+[0-9A-F]{4}\s{2}(.*)$/.exec(line);
      if (m) rows.push({ number: Number(m[1]), start: Number(m[2]), end: Number(m[3]), name: m[4] });
    }
    return rows;
  }

  it('reads entries, GUIDs, names and attributes as sfdisk --json and sgdisk -p show them', async function () {
    const theirs = await sfdiskJson(gptImage);
    const ours = await guardImages([gptImage], () => readTable(gptImage));
    assertSameAsSfdisk(ours, theirs);
    assert.deepEqual(
      ours.partitions.map((p) => ({ number: p.number, start: p.startSector, end: p.startSector + p.sectorCount - 1, name: p.name })),
      sgdiskRows(),
    );
    assert.deepEqual(ours.partitions.map((p) => p.number), [1, 2, 3, 5]);
    assert.equal(ours.partitions[0].attributes, '0000000000000004');
    assert.equal(ours.partitions[2].name, 'EFI ünïcødé');
    assert.deepEqual(ours.warnings, []);
  });

  it('detects 4096-byte logical sectors from the header at LBA 1 (sgdisk on a 4096-sector loop device)', async function () {
    needRoot(this);
    const image = join(dir, 'disk4k.img');
    await writeFile(image, '');
    await truncate(image, 128 * 1024 * 1024);
    const theirs = await withLoop(image, 4096, async (dev) => {
      await sh('sgdisk', ['-n', '1:256:+16M', '-t', '1:8300', '-c', '1:data', '-n', '2:0:+8M', '-t', '2:8200', dev]);
      return sfdiskJson(dev);
    });
    assert.equal(theirs.sectorsize, 4096);
    const ours = await guardImages([image], () => readTable(image));
    assert.equal(ours.sectorSize, 4096);
    assertSameAsSfdisk(ours, theirs);
  });

  it('falls back to the backup GPT when the primary header is damaged, and says so (sfdisk does the same)', async function () {
    const image = join(dir, 'bad-primary-header.img');
    await copyFile(gptImage, image);
    await pokeByte(image, 512 + 0x40, 0xff); // inside DiskGUID: header CRC no longer matches
    const theirs = await sfdiskJson(image);
    const ours = await readTable(image);
    assertSameAsSfdisk(ours, theirs);
    assert.equal(ours.warnings.length, 1);
    assert.match(ours.warnings[0], /primary GPT \(LBA 1\) is damaged \(header CRC32 mismatch.*\); using the backup GPT at LBA 131071/);
  });

  it('falls back to the backup GPT when the primary entry array fails its CRC', async function () {
    const image = join(dir, 'bad-primary-array.img');
    await copyFile(gptImage, image);
    await pokeByte(image, 2 * 512 + 40, 0x7f); // EndingLBA of entry 1
    const ours = await readTable(image);
    assertSameAsSfdisk(ours, await sfdiskJson(gptImage));
    assert.match(ours.warnings[0], /partition entry array CRC32 mismatch/);
  });

  it('warns when the backup is damaged but the primary is fine', async function () {
    const image = join(dir, 'bad-backup.img');
    await copyFile(gptImage, image);
    await pokeByte(image, 64 * 1024 * 1024 - 512 + 0x40, 0xff);
    const ours = await readTable(image);
    assertSameAsSfdisk(ours, await sfdiskJson(gptImage));
    assert.match(ours.warnings[0], /backup GPT at LBA 131071 is damaged .*primary GPT is intact/);
  });

  it('fails with a typed error naming the image when both GPTs are damaged', async function () {
    const image = join(dir, 'bad-both.img');
    await copyFile(gptImage, image);
    await pokeByte(image, 512 + 0x40, 0xff);
    await pokeByte(image, 64 * 1024 * 1024 - 512 + 0x40, 0xff);
    await assert.rejects(readTable(image), (err: unknown) => {
      assert.ok(err instanceof PartitionTableError);
      assert.equal(err.userFacing, true);
      assert.match(err.message, /bad-both\.img: .*primary GPT \(LBA 1\) is damaged .* and so is the backup at LBA 131071/);
      return true;
    });
  });

  it('refuses absurd entry counts and sizes even when the header CRC is right, using the backup, without large reads', async function () {
    const bytes = await readFile(gptImage);
    for (const [field, value, why] of [
      [80, 0xffffffff, /4294967295 partition entries of 128 bytes .* exceed/],
      [84, 0x10000000, /SizeOfPartitionEntry 268435456 is not 128 x 2\^n/],
      [84, 100, /SizeOfPartitionEntry 100/],
      [72, 0xfffffff0, /PartitionEntryLBA 4294967280 is beyond the last LBA/],
    ] as const) {
      const src = new MemorySource(bytes, 'absurd.img');
      const header = src.unit(1);
      header.writeUInt32LE(value, field);
      fixHeaderCrc(header);
      src.patch(512, header);
      const t = await readPartitionTable(src);
      assert.equal(t.partitions.length, 4);
      assert.match(t.warnings[0], why);
      assert.ok(src.largestRead <= 16 * 1024, `largest read ${src.largestRead}`);
    }
  });

  it('reads a hybrid MBR (sgdisk -h: 0xEE beside real MBR entries) as the GPT, as sfdisk does', async function () {
    const image = join(dir, 'hybrid.img');
    await copyFile(gptImage, image);
    await sh('sgdisk', ['-h', '1:EE', image]);
    const mbr = (await readFile(image)).subarray(0, 512);
    assert.ok([0, 1, 2, 3].some((i) => mbr[446 + i * 16 + 4] === 0x83), 'sgdisk made a hybrid entry');
    const ours = await readTable(image);
    assertSameAsSfdisk(ours, await sfdiskJson(image));
    assert.deepEqual(ours.warnings, []);
  });

  it('a GPT without any MBR is still read (with a warning); a stale GPT behind a real MBR is ignored (with a warning)', async function () {
    const bytes = await readFile(gptImage);
    const bare = new MemorySource(bytes, 'no-pmbr.img');
    bare.patch(0, Buffer.alloc(512));
    const t = await readPartitionTable(bare);
    assert.equal(t.scheme, 'gpt');
    assert.equal(t.partitions.length, 4);
    assert.match(t.warnings[0], /GPT but no protective MBR/);

    const stale = new MemorySource(bytes, 'stale-gpt.img');
    const mbr = Buffer.alloc(512);
    writeEntry(mbr, 0, { type: 0x83, start: 2048, count: 4096 });
    mbr.writeUInt16LE(0xaa55, 510);
    stale.patch(0, mbr);
    const t2 = await readPartitionTable(stale);
    assert.equal(t2.scheme, 'mbr');
    assert.deepEqual(t2.partitions.map((p) => [p.number, p.startSector, p.sectorCount]), [[1, 2048, 4096]]);
    assert.match(t2.warnings[0], /GPT header is present but the MBR does not protect it/);
  });

  it('skips entries whose LBAs are reversed or beyond the disk, with warnings', async function () {
    const src = new MemorySource(await readFile(gptImage), 'entries.img');
    const arr = src.unit(2); // entries 1..4
    arr.writeBigUInt64LE(999_999_999n, 128 + 40); // entry 2 ends past the disk
    arr.writeBigUInt64LE(10n, 256 + 40); // entry 3 ends before it starts
    src.patch(1024, arr);
    const header = src.unit(1);
    const entries = Buffer.concat([src.unit(2), ...Array.from({ length: 31 }, (_, i) => src.unit(3 + i))]);
    header.writeUInt32LE(crc32(entries), 88);
    fixHeaderCrc(header);
    src.patch(512, header);
    const t = await readPartitionTable(src);
    assert.deepEqual(t.partitions.map((p) => p.number), [1, 5]);
    assert.match(t.warnings.join('\n'), /GPT entry 2: sectors .* run past the end of the disk/);
    assert.match(t.warnings.join('\n'), /GPT entry 3: StartingLBA \d+ is after EndingLBA 10/);
  });
});

describe('volumes: disks without a partition table', function () {
  it('a whole-disk ext4 has no partition table and probes as ext4', async function () {
    const image = join(scratchDir('whole'), 'ext4.img');
    await writeFile(image, '');
    await truncate(image, 32 * 1024 * 1024);
    await sh('mkfs.ext4', ['-q', '-F', image]);
    const src = await RawFileSource.open(image);
    try {
      const t = await readPartitionTable(src);
      assert.equal(t.scheme, 'none');
      assert.equal((await probeFilesystem(src)).type, 'ext4');
    } finally {
      await src.close();
    }
  });

  it('a whole-disk FAT (whose boot sector carries 0x55AA) is not mistaken for an MBR', async function () {
    for (const bits of ['12', '16', '32']) {
      const image = join(scratchDir('whole-fat'), `fat${bits}.img`);
      await writeFile(image, '');
      await truncate(image, 64 * 1024 * 1024);
      await sh('mkfs.vfat', ['-F', bits, image]);
      const t = await readTable(image);
      assert.equal(t.scheme, 'none', `FAT${bits}`);
    }
  });

  it('a blank disk, and one smaller than a sector, have no partition table', async function () {
    assert.equal((await readPartitionTable(new MemorySource(Buffer.alloc(0), 'blank.img', 1024 * 1024))).scheme, 'none');
    assert.equal((await readPartitionTable(new MemorySource(Buffer.alloc(100), 'tiny.img'))).scheme, 'none');
  });

  it('rejects a sector size other than 512 or 4096', async function () {
    await assert.rejects(readPartitionTable(new MemorySource(Buffer.alloc(4096), 'x.img'), { sectorSize: 1000 }), PartitionTableError);
  });
});

describe('volumes: slices', function () {
  it('reads relative to the window, refuses reads outside it, and names itself', async function () {
    const base = Buffer.alloc(8192);
    for (let i = 0; i < base.length; i++) base[i] = i & 0xff;
    const disk = new MemorySource(base, 'disk.qcow2');
    const slice = new SliceSource(disk, 1024, 2048, 'disk.qcow2 partition 2');
    assert.deepEqual(await slice.read(0, 4), base.subarray(1024, 1028));
    assert.deepEqual(await slice.read(2044, 4), base.subarray(3068, 3072));
    await assert.rejects(slice.read(2045, 4), /disk\.qcow2 partition 2: read of 4 bytes at offset 2045 runs past the end \(size 2048\)/);
    await assert.rejects(slice.read(-1, 1), RangeError);
    assert.deepEqual(await slice.extent(100, 50), { offset: 100, length: 50, kind: 'data' });
    const into = Buffer.alloc(10, 0xee);
    await slice.readInto(into, 3, 16, 4);
    assert.deepEqual(into, Buffer.concat([Buffer.alloc(3, 0xee), base.subarray(1040, 1044), Buffer.alloc(3, 0xee)]));
    await assert.rejects(slice.readInto(into, 0, 2047, 2), /runs past the end/);
    assert.throws(() => new SliceSource(disk, 8000, 1000, 'x'), SliceBoundsError);
    assert.throws(() => new SliceSource(disk, -1, 10, 'x'), SliceBoundsError);
    await slice.close();
    await assert.rejects(slice.read(0, 1), /already closed/);
    assert.deepEqual(await disk.read(0, 1), base.subarray(0, 1));
  });
});

describe('volumes: mutation fuzzing of MBR and GPT sectors', function () {
  this.timeout(300_000);
  const CASES = 1500;

  /** Returns how the cases ended, so a test can show the fuzzer reached more than one path. */
  async function fuzz(base: Buffer, name: string, metadataSectors: number[], seed: number, gpt: boolean): Promise<Record<string, number>> {
    const outcomes: Record<string, number> = { error: 0, warnings: 0, clean: 0, none: 0 };
    const rand = mulberry32(seed);
    const interesting = [0, 1, 0x7f, 0x80, 0xff, 0xee, 0x05, 0x0f, 0x85, 0x55, 0xaa];
    for (let c = 0; c < CASES; c++) {
      const src = new MemorySource(base, `${name}#${c}`);
      const mutations = 1 + Math.floor(rand() * 6);
      for (let m = 0; m < mutations; m++) {
        const sector = metadataSectors[Math.floor(rand() * metadataSectors.length)];
        const unit = src.unit(sector);
        const at = Math.floor(rand() * 512);
        const roll = rand();
        if (roll < 0.4) unit[at] = Math.floor(rand() * 256);
        else if (roll < 0.7) unit[at] = interesting[Math.floor(rand() * interesting.length)];
        else if (at <= 508) unit.writeUInt32LE([0, 0xffffffff, 0x80000000, 1, Math.floor(rand() * 2 ** 32)][Math.floor(rand() * 5)], at);
        src.patch(sector * 512, unit);
      }
      // Half of the GPT cases get their CRCs repaired, so the checks behind the CRCs are reached too.
      if (gpt && rand() < 0.5) repairGptCrcs(src);
      const context = `case ${c} of seed ${seed} (${name})`;
      let table: PartitionTable | undefined;
      try {
        table = await readPartitionTable(src);
      } catch (err) {
        if (!(err instanceof PartitionTableError)) throw new Error(`${context}: unexpected ${String((err as Error)?.stack ?? err)}`);
        outcomes.error++;
      }
      assert.ok(src.reads <= 1200, `${context}: ${src.reads} reads`);
      assert.ok(src.largestRead <= 4 * 1024 * 1024, `${context}: a read of ${src.largestRead} bytes`);
      if (!table) continue;
      outcomes[table.scheme === 'none' ? 'none' : table.warnings.length ? 'warnings' : 'clean']++;
      const numbers = new Set<number>();
      for (const p of table.partitions) {
        assert.ok(!numbers.has(p.number), `${context}: partition number ${p.number} twice`);
        numbers.add(p.number);
        assert.ok(p.number >= 1, `${context}: number ${p.number}`);
        assertInside(p, src.size, context);
        new SliceSource(src, p.offset, p.size, `${name} partition ${p.number}`);
      }
    }
    return outcomes;
  }

  it('MBR with an extended partition and a chain of logical partitions', async function () {
    const image = join(scratchDir('fuzz-mbr'), 'disk.img');
    await writeFile(image, '');
    await truncate(image, 64 * 1024 * 1024);
    await sh('sfdisk', ['-q', image], { input: MBR_SCRIPT });
    const table = await readTable(image);
    const ebrSectors = await ebrSectorsOf(image, table);
    const base = await readFile(image);
    const outcomes = await fuzz(base, 'mbr', [0, 0, 0, ...ebrSectors], 0x5eed01, false);
    assert.ok(outcomes.warnings > 50 && outcomes.clean > 50 && outcomes.none > 10, JSON.stringify(outcomes));
  });

  it('GPT: protective MBR, headers and entry arrays', async function () {
    const image = join(scratchDir('fuzz-gpt'), 'disk.img');
    await writeFile(image, '');
    await truncate(image, 16 * 1024 * 1024);
    await sh('sgdisk', ['-n', '1:2048:+2M', '-n', '2:0:+2M', '-n', '3:0:+1M', '-c', '3:x', image]);
    const base = await readFile(image);
    const last = base.length / 512 - 1;
    const outcomes = await fuzz(base, 'gpt', [0, 1, 1, 1, 2, 2, 3, last, last, last - 32, last - 31], 0x5eed02, true);
    assert.ok(outcomes.error > 50 && outcomes.warnings > 50 && outcomes.clean > 50, JSON.stringify(outcomes));
  });
});

function assertInside(p: Partition, diskSize: number, context: string): void {
  assert.ok(Number.isSafeInteger(p.offset) && Number.isSafeInteger(p.size), `${context}: non-integer bounds`);
  assert.ok(p.offset >= 0 && p.size >= 0 && p.offset + p.size <= diskSize, `${context}: partition ${p.number} at ${p.offset}+${p.size} outside the disk of ${diskSize}`);
}

async function ebrSectorsOf(image: string, table: PartitionTable): Promise<number[]> {
  // Each logical partition's EBR precedes it by the gap sfdisk leaves (its start within the EBR is relative).
  const bytes = await readFile(image);
  const sectors: number[] = [];
  const ext = table.partitions.find((p) => p.kind === 'extended');
  if (!ext) return sectors;
  let ebr = ext.startSector;
  for (let i = 0; i < 16; i++) {
    sectors.push(ebr);
    const link = bytes.readUInt32LE(ebr * 512 + 446 + 16 + 8);
    if (!link) break;
    ebr = ext.startSector + link;
  }
  return sectors;
}

function writeEntry(sector: Buffer, slot: number, e: { type: number; start: number; count: number; boot?: boolean }): void {
  const at = 446 + slot * 16;
  sector[at] = e.boot ? 0x80 : 0;
  sector[at + 4] = e.type;
  sector.writeUInt32LE(e.start, at + 8);
  sector.writeUInt32LE(e.count, at + 12);
}

function ebr(logical?: { start: number; count: number }, next?: { start: number }): Buffer {
  const s = Buffer.alloc(512);
  if (logical) writeEntry(s, 0, { type: 0x83, ...logical });
  if (next) writeEntry(s, 1, { type: 0x05, start: next.start, count: 8 });
  s.writeUInt16LE(0xaa55, 510);
  return s;
}

async function pokeByte(path: string, offset: number, xor: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] ^= xor;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

import { crc32 as zlibCrc32 } from 'node:zlib';
function crc32(b: Buffer): number {
  return zlibCrc32(b) >>> 0;
}

function fixHeaderCrc(header: Buffer): void {
  const size = Math.min(Math.max(header.readUInt32LE(12), 92), 512);
  header.writeUInt32LE(0, 16);
  header.writeUInt32LE(crc32(header.subarray(0, size)), 16);
}

/** Recompute the entry-array and header CRCs of both GPT headers of `src` where the header's own fields allow it. */
function repairGptCrcs(src: MemorySource): void {
  const lastLba = src.size / 512 - 1;
  for (const lba of [1, lastLba]) {
    const header = src.unit(lba);
    const entryLba = Number(header.readBigUInt64LE(72));
    const bytes = header.readUInt32LE(80) * header.readUInt32LE(84);
    if (bytes > 0 && bytes <= 64 * 1024 && (entryLba + bytes / 512) <= lastLba + 1) {
      const units = Math.ceil(bytes / 512);
      const arr = Buffer.concat(Array.from({ length: units }, (_, i) => src.unit(entryLba + i))).subarray(0, bytes);
      header.writeUInt32LE(crc32(arr), 88);
    }
    fixHeaderCrc(header);
    src.patch(lba * 512, header);
  }
}

/** Uniform numbers in [0, 1) from the tests' one generator. */
function mulberry32(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

