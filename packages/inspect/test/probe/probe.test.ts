/**
 * The probe against blkid: every fixture is made by the real mkfs/mkswap/
 * pvcreate, and our answer must equal `blkid -p -o export` key for key
 * (TYPE, USAGE, LABEL, UUID, UUID_SUB, VERSION, SEC_TYPE, BLOCK_SIZE,
 * LABEL_FATBOOT, EXT_JOURNAL, LOGUUID), both for the whole image and inside a partition.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { RawFileSource } from '@guestlens/qcow2-js';
import { extTypeFromFeatures, probeFilesystem, type ProbeResult } from '../../src/index.ts';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { sh } from '../../../../test/support/run.ts';
import { MemorySource } from '../../../../test/support/memorySource.ts';

const KEYS: Array<[keyof ProbeResult, string]> = [
  ['type', 'TYPE'],
  ['usage', 'USAGE'],
  ['label', 'LABEL'],
  ['uuid', 'UUID'],
  ['uuidSub', 'UUID_SUB'],
  ['version', 'VERSION'],
  ['secType', 'SEC_TYPE'],
  ['blockSize', 'BLOCK_SIZE'],
  ['labelFatboot', 'LABEL_FATBOOT'],
  ['extJournal', 'EXT_JOURNAL'],
  ['logUuid', 'LOGUUID'],
];

/** blkid's low-level probe of a file, as KEY → value (empty when blkid finds nothing). */
async function blkid(path: string): Promise<Record<string, string>> {
  const r = await execa('blkid', ['-p', '-o', 'export', path], { reject: false });
  if (r.exitCode === 2) return {};
  if (r.exitCode !== 0) throw new Error(`blkid -p ${path} failed (exit ${r.exitCode}): ${r.stderr}`);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    if (key === 'DEVNAME') continue;
    out[key] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  // Export mode prints non-ASCII bytes cat -v style; ask for the raw bytes of the labels instead.
  for (const key of ['LABEL', 'LABEL_FATBOOT']) {
    if (out[key] === undefined) continue;
    const raw = await execa('blkid', ['-p', '-o', 'value', '-s', key, path], { encoding: 'buffer' });
    out[key] = Buffer.from(raw.stdout).toString('utf8').replace(/\n$/, '');
  }
  return out;
}

function asBlkid(r: ProbeResult): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.type === 'unknown') return out;
  for (const [ours, theirs] of KEYS) {
    const v = r[ours];
    if (v !== undefined) out[theirs] = String(v);
  }
  return out;
}

async function probeFile(path: string): Promise<ProbeResult> {
  const src = await RawFileSource.open(path);
  try {
    return await probeFilesystem(src);
  } finally {
    await src.close();
  }
}

async function blankImage(dir: string, name: string, size: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, '');
  await truncate(path, size);
  return path;
}

async function assertLikeBlkid(path: string, expectedType: string): Promise<ProbeResult> {
  const theirs = await blkid(path);
  const ours = await guardImages([path], () => probeFile(path));
  assert.deepEqual(asBlkid(ours), theirs, `${path}: ours ${JSON.stringify(ours)}`);
  assert.equal(ours.type, expectedType);
  return ours;
}

const MiB = 1024 * 1024;

describe('probe: filesystems against blkid -p', function () {
  let dir: string;
  before(function () {
    dir = scratchDir('probe');
  });

  const extCases: Array<{ name: string; mkfs: string; args: string[]; type: string }> = [
    { name: 'ext2', mkfs: 'mkfs.ext2', args: ['-L', 'boot'], type: 'ext2' },
    { name: 'ext3', mkfs: 'mkfs.ext3', args: ['-L', 'lab ext3'], type: 'ext3' },
    { name: 'ext4', mkfs: 'mkfs.ext4', args: ['-L', 'ünï cødé', '-b', '4096'], type: 'ext4' },
    { name: 'ext4-nolabel', mkfs: 'mkfs.ext4', args: [], type: 'ext4' },
    { name: 'ext4-nojournal', mkfs: 'mkfs.ext4', args: ['-O', '^has_journal'], type: 'ext4' },
    { name: 'ext2-extents', mkfs: 'mkfs.ext2', args: ['-O', 'extents'], type: 'ext4' },
    { name: 'ext3-huge_file', mkfs: 'mkfs.ext3', args: ['-O', 'huge_file'], type: 'ext4' },
    { name: 'journal-device', mkfs: 'mkfs.ext4', args: ['-O', 'journal_dev', '-L', 'jdev'], type: 'jbd' },
    { name: 'ext4-old', mkfs: 'mkfs.ext4', args: ['-O', '^64bit,^metadata_csum,^extent,^flex_bg,^huge_file,^dir_nlink,^extra_isize'], type: 'ext3' },
  ];
  for (const c of extCases) {
    it(`${c.name} (${c.mkfs} ${c.args.join(' ')}) → ${c.type}`, async function () {
      const path = await blankImage(dir, `${c.name}.img`, 32 * MiB);
      await sh(c.mkfs, ['-q', '-F', ...c.args, path]);
      await assertLikeBlkid(path, c.type);
    });
  }

  it('xfs with and without a label (sparse 300 MiB images)', async function () {
    const labelled = await blankImage(dir, 'xfs.img', 300 * MiB);
    await sh('mkfs.xfs', ['-q', '-L', 'xlab', labelled]);
    assert.equal((await assertLikeBlkid(labelled, 'xfs')).label, 'xlab');
    const plain = await blankImage(dir, 'xfs-nolabel.img', 300 * MiB);
    await sh('mkfs.xfs', ['-q', plain]);
    await assertLikeBlkid(plain, 'xfs');
  });

  it('LUKS1 and LUKS2 (cryptsetup luksFormat), LUKS2 with a label, and LUKS2 found by its secondary header', async function () {
    const luks = async (name: string, args: string[]) => {
      const path = await blankImage(dir, name, 32 * MiB);
      await sh('cryptsetup', ['luksFormat', '-q', '--pbkdf-force-iterations', '1000', ...args, path, '-'], { input: 'not a secret' });
      return path;
    };
    const one = await luks('luks1.img', ['--type', 'luks1']);
    assert.equal((await assertLikeBlkid(one, 'crypto_LUKS')).version, '1');
    const two = await luks('luks2.img', ['--type', 'luks2', '--pbkdf', 'pbkdf2', '--label', 'secret data']);
    const ours = await assertLikeBlkid(two, 'crypto_LUKS');
    assert.equal(ours.label, 'secret data');
    assert.match(ours.uuid!, /^[0-9a-f-]{36}$/);
    // Wipe the primary header: blkid (and we) find the secondary one.
    await sh('dd', ['if=/dev/zero', `of=${two}`, 'bs=4096', 'count=1', 'conv=notrunc', 'status=none']);
    assert.equal((await assertLikeBlkid(two, 'crypto_LUKS')).label, 'secret data');
  });

  for (const bits of ['12', '16', '32']) {
    it(`vfat FAT${bits}, with a label and without`, async function () {
      const labelled = await blankImage(dir, `fat${bits}.img`, 64 * MiB);
      await sh('mkfs.vfat', ['-F', bits, '-n', `FAT${bits} LBL`, labelled]);
      const ours = await assertLikeBlkid(labelled, 'vfat');
      assert.equal(ours.version, `FAT${bits}`);
      assert.equal(ours.label, `FAT${bits} LBL`);
      const plain = await blankImage(dir, `fat${bits}-nolabel.img`, 64 * MiB);
      await sh('mkfs.vfat', ['-F', bits, plain]);
      assert.equal((await assertLikeBlkid(plain, 'vfat')).label, undefined);
    });
  }

  it('vfat whose root directory has lost its label entry: LABEL goes, LABEL_FATBOOT stays (as blkid says)', async function () {
    const path = await blankImage(dir, 'fat16-rootlabel.img', 64 * MiB);
    await sh('mkfs.vfat', ['-F', '16', '-n', 'BOOTONLY', path]);
    const src = await RawFileSource.open(path);
    const bs = await src.read(0, 512);
    await src.close();
    const rootOffset = (bs.readUInt16LE(14) + bs[16] * bs.readUInt16LE(22)) * bs.readUInt16LE(11);
    const fh = await (await import('node:fs/promises')).open(path, 'r+');
    await fh.write(Buffer.alloc(32), 0, 32, rootOffset);
    await fh.close();
    const ours = await assertLikeBlkid(path, 'vfat');
    assert.equal(ours.label, undefined);
    assert.equal(ours.labelFatboot, 'BOOTONLY');
  });

  it('ntfs (mkfs.ntfs -Q -F) with its label in the $Volume record and the serial as UUID', async function () {
    const path = await blankImage(dir, 'ntfs.img', 64 * MiB);
    await sh('mkfs.ntfs', ['-q', '-Q', '-F', '-L', 'nt label', path]);
    const ours = await assertLikeBlkid(path, 'ntfs');
    assert.equal(ours.label, 'nt label');
    assert.match(ours.uuid ?? '', /^[0-9A-F]{16}$/);
  });

  it('btrfs with UUID_SUB', async function () {
    const path = await blankImage(dir, 'btrfs.img', 200 * MiB);
    await sh('mkfs.btrfs', ['-q', '-L', 'blab', path]);
    const ours = await assertLikeBlkid(path, 'btrfs');
    assert.ok(ours.uuidSub && ours.uuidSub !== ours.uuid);
  });

  it('swap with 4 KiB and 64 KiB page signatures, and the pre-2.2 "SWAP-SPACE" signature', async function () {
    const swap = await blankImage(dir, 'swap.img', 16 * MiB);
    await sh('mkswap', ['-L', 'swl', '-U', '6b0f8f6e-2c3a-4d6e-9a8b-1c2d3e4f5a6b', swap]);
    assert.equal((await assertLikeBlkid(swap, 'swap')).uuid, '6b0f8f6e-2c3a-4d6e-9a8b-1c2d3e4f5a6b');
    const swap64 = await blankImage(dir, 'swap64k.img', 16 * MiB);
    await sh('mkswap', ['-p', '65536', '-L', 'big pages', swap64]);
    assert.equal((await assertLikeBlkid(swap64, 'swap')).label, 'big pages');
    const v0 = Buffer.alloc(64 * 1024);
    v0.write('SWAP-SPACE', 4086, 'latin1');
    const v0Path = join(dir, 'swap-v0.img');
    await writeFile(v0Path, v0);
    assert.equal((await assertLikeBlkid(v0Path, 'swap')).version, '0');
  });

  it('an LVM2 physical volume (pvcreate on a loop device) is LVM2_member with its PV UUID', async function () {
    if (process.getuid?.() !== 0) {
      console.log('      (skipped: pvcreate needs a loop device, which needs root)');
      this.skip();
    }
    const path = await blankImage(dir, 'pv.img', 16 * MiB);
    const device = (await sh('losetup', ['--find', '--show', path])).trim();
    try {
      // No device-mapper in this kernel: pvcreate still writes the label, it only warns.
      await sh('pvcreate', ['-ff', '-y', '--config', 'devices { use_devicesfile=0 }', device], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    } finally {
      await execa('losetup', ['-d', device], { reject: false });
    }
    const ours = await assertLikeBlkid(path, 'LVM2_member');
    assert.match(ours.uuid ?? '', /^\w{6}-\w{4}-\w{4}-\w{4}-\w{4}-\w{4}-\w{6}$/);
  });

  it('random bytes, zeros and a tiny device are "unknown", as blkid finds nothing', async function () {
    const rnd = join(dir, 'random.img');
    await writeFile(rnd, randomBytes(MiB));
    await assertLikeBlkid(rnd, 'unknown');
    const zero = await blankImage(dir, 'zero.img', MiB);
    await assertLikeBlkid(zero, 'unknown');
    assert.equal((await probeFilesystem(new MemorySource(Buffer.alloc(100), 'tiny'))).type, 'unknown');
  });

  it('finds the filesystem inside a partition (probe of a slice), as blkid does with --offset', async function () {
    const path = await blankImage(dir, 'parted.img', 64 * MiB);
    await sh('sfdisk', ['-q', path], { input: 'label: dos\nstart=2048, size=32M, type=83\n' });
    const part = await blankImage(dir, 'part.img', 32 * MiB);
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'inpart', part]);
    await sh('dd', [`if=${part}`, `of=${path}`, 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none']);
    const theirs = await execa('blkid', ['-p', '-o', 'export', '--offset', String(2048 * 512), path]);
    const { readPartitionTable } = await import('../../src/index.ts');
    const { BlockWindow: SliceSource } = await import('@guestlens/block');
    const src = await RawFileSource.open(path);
    try {
      const t = await readPartitionTable(src);
      const p = t.partitions[0];
      const ours = await probeFilesystem(new SliceSource(src, p.offset, p.size, 'parted.img partition 1'));
      assert.equal(ours.type, 'ext4');
      assert.equal(ours.label, 'inpart');
      assert.match(theirs.stdout, new RegExp(`UUID=${ours.uuid}`));
    } finally {
      await src.close();
    }
  });
});

describe('probe: ext2/3/4 decision from feature flags (libblkid rules)', function () {
  const HAS_JOURNAL = 0x4;
  it('follows journal, ext3-unknown features and the test-filesystem flag', function () {
    assert.equal(extTypeFromFeatures({ compat: 0, incompat: 0x2, roCompat: 0x3, flags: 0 }), 'ext2');
    assert.equal(extTypeFromFeatures({ compat: HAS_JOURNAL, incompat: 0x2, roCompat: 0x3, flags: 0 }), 'ext3');
    assert.equal(extTypeFromFeatures({ compat: HAS_JOURNAL, incompat: 0x2 | 0x40, roCompat: 0x3, flags: 0 }), 'ext4'); // extents
    assert.equal(extTypeFromFeatures({ compat: 0, incompat: 0x2, roCompat: 0x3 | 0x400, flags: 0 }), 'ext4'); // metadata_csum, no journal
    assert.equal(extTypeFromFeatures({ compat: HAS_JOURNAL, incompat: 0x2, roCompat: 0x3, flags: 0x4 }), 'ext4dev');
    assert.equal(extTypeFromFeatures({ compat: 0, incompat: 0x8, roCompat: 0, flags: 0 }), 'jbd');
    // needs_recovery without a journal: none of blkid's ext probes accepts it.
    assert.equal(extTypeFromFeatures({ compat: 0, incompat: 0x4, roCompat: 0, flags: 0 }), undefined);
  });
});

describe('probe: hostile signatures', function () {
  it('never throws, reads boundedly, and says unknown or a type for mutated superblocks', async function () {
    this.timeout(120_000);
    const dir = scratchDir('probe-fuzz');
    const fixtures: Array<[string, Buffer]> = [];
    for (const [name, cmd, args, size] of [
      ['ext4', 'mkfs.ext4', ['-q', '-F', '-L', 'x'], 8 * MiB],
      ['fat32', 'mkfs.vfat', ['-F', '32', '-n', 'X'], 40 * MiB],
      ['fat12', 'mkfs.vfat', ['-F', '12', '-n', 'X'], 4 * MiB],
      ['ntfs', 'mkfs.ntfs', ['-q', '-Q', '-F', '-L', 'x'], 8 * MiB],
      ['swap', 'mkswap', ['-L', 'x'], 1 * MiB],
    ] as const) {
      const path = await blankImage(dir, `${name}.img`, size);
      await sh(cmd, [...args, path]);
      fixtures.push([name, await readFile(path)]);
    }
    let rand = 0x1234567;
    const next = () => ((rand = (Math.imul(rand, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const seen = new Set<string>();
    for (const [name, head] of fixtures) {
      for (let c = 0; c < 300; c++) {
        const src = new MemorySource(head, `${name}#${c}`);
        for (let m = 0; m < 1 + Math.floor(next() * 6); m++) {
          const offset = Math.floor(next() * Math.min(head.length, 8192));
          const unit = src.unit(Math.floor(offset / 512));
          unit[offset % 512] = next() < 0.5 ? Math.floor(next() * 256) : [0, 0xff, 0x80, 1][Math.floor(next() * 4)];
          src.patch(Math.floor(offset / 512) * 512, unit);
        }
        const r = await probeFilesystem(src);
        seen.add(r.type);
        assert.ok(src.reads < 400, `${name} case ${c}: ${src.reads} reads`);
        assert.ok(src.largestRead <= 256 * 1024, `${name} case ${c}: read of ${src.largestRead}`);
      }
    }
    assert.ok(seen.has('unknown') && seen.has('ext4') && seen.has('vfat'), [...seen].join(','));
  });
});
