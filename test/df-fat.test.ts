/**
 * guestlens df on a UEFI guest: a GPT qcow2 disk whose first partition is
 * an EFI System Partition (FAT32, 4 KiB clusters, filled by mtools) and whose
 * second is an ext4 root. The ESP's row must equal fsck.fat -n -v's cluster
 * counts (this kernel has no vfat driver to ask; the Linux vfat driver
 * reports the same numbers, see shared/spec/statfs.md), the ext4 row the
 * kernel's stat -f of a read-only loop mount; the image never changes.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { buildDisk, toQcow2, type BuiltDisk } from './support/guestDisk.ts';
import { kernelStatfs, loopMountUnavailable, withKernelMount } from './support/kernel.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh } from './support/run.ts';
import { dfHeader, dfRow, type DfStat } from '../cli/src/df/dfOutput.ts';
import { buildFat, fsckCounts, mtools, standardTree } from '../packages/inspect/test/filesystems/fat/fatFixtures.ts';

const MiB = 1024 * 1024;
const ESP_MIB = 300;

describe('guestlens df: a GPT guest with an EFI System Partition (FAT32) and ext4', function () {
  this.timeout(300000);
  let disk: BuiltDisk;
  let qcow2: string;
  let esp: DfStat;
  let root: DfStat;
  let espUuid: string;

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot ask the kernel about the ext4 partition here: ${why}`);
      this.skip();
    }
    const fat = await buildFat('esp', { sizeBytes: ESP_MIB * MiB, mkfsArgs: ['-F', '32', '-s', '8', '-n', 'ESP'], tree: standardTree(4096, { depth: 4, many: 20, big: true }) });
    const fsck = await fsckCounts(fat.path);
    assert.equal(fsck.clusterSize, 4096);
    esp = { bsize: fsck.clusterSize, blocks: fsck.dataClusters, bfree: fsck.dataClusters - fsck.usedClusters, bavail: fsck.dataClusters - fsck.usedClusters, files: 0, ffree: 0 };
    const serial = /serial number: ([0-9A-F]{8})/.exec(await mtools('minfo', ['-i', fat.path, '::']))![1];
    espUuid = `${serial.slice(0, 4)}-${serial.slice(4)}`;
    disk = await buildDisk('uefi', 'gpt', [
      { sizeMiB: ESP_MIB, type: 'uefi', content: { image: fat.path } },
      { sizeMiB: 64, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root'], files: { 'etc/hostname': 'uefi\n', 'var/blob': Buffer.alloc(300 * 1024, 3) } } },
    ]);
    const p2 = disk.partitions[1];
    root = await withKernelMount(disk.raw, { offset: p2.offset, sizelimit: p2.size }, (m) => kernelStatfs(m.dir));
    qcow2 = await toQcow2(disk.raw);
    const table = JSON.parse(await sh('sfdisk', ['--json', disk.raw])) as { partitiontable: { partitions: Array<{ type: string }> } };
    assert.equal(table.partitiontable.partitions[0].type, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'partition 1 is an EFI System Partition');
  });

  it('prints the ESP with fsck.fat\'s cluster counts and ext4 with the kernel\'s, as virt-df lays them out', async () => {
    const name = basename(qcow2);
    for (const opts of [
      { human: false, inodes: false, csv: false },
      { human: true, inodes: false, csv: false },
      { human: false, inodes: true, csv: true },
    ]) {
      const flags = [...(opts.csv ? ['--csv'] : []), ...(opts.inodes ? ['-i'] : []), ...(opts.human ? ['-h'] : [])];
      const r = await guardImages([qcow2], () => guestlens(['df', ...flags, qcow2]));
      assert.equal(r.stderr, '');
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, dfHeader(opts) + dfRow(name, '/dev/sda1', esp, opts) + dfRow(name, '/dev/sda2', root, opts), flags.join(' '));
    }
  });

  it('says vfat, the label, the serial and exact in JSON', async () => {
    const r = await guardImages([qcow2], () => guestlens(['df', '--json', qcow2]));
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.map((x) => [x.device, x.fstype, x.label]), [['/dev/sda1', 'vfat', 'ESP'], ['/dev/sda2', 'ext4', 'root']]);
    const fat = rows[0];
    assert.deepEqual({ bsize: fat.bsize, blocks: fat.blocks, bfree: fat.bfree, bavail: fat.bavail, files: fat.files, ffree: fat.ffree }, esp);
    assert.equal(fat.exact, true);
    assert.equal(fat.uuid, espUuid);
  });
});
