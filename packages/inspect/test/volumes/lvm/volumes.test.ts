/**
 * Logical volumes of a two-disk guest made with the real lvm2 tools
 * (support/lvmGuest.ts): linear, discontiguous, striped over both PVs,
 * raid1 with an image on each, swap. Every LV's bytes as we read them must
 * be the bytes at the extents lvs reports (and the filesystem image written
 * there); the filesystem inside must be the one the kernel mounts from
 * those bytes (statfs and the whole tree); extent() must say where the
 * qcow2 image below has holes. Given one disk of the two, the LVs that need
 * the other are named and the rest still read.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extents } from '@guestlens/block';
import { openGuest, type Guest } from '../../../src/index.ts';
import { buildLvmGuest, type LvmGuest } from '../../../../../test/support/lvmGuest.ts';
import { gather, lvmUnavailable } from '../../../../../test/support/lvm.ts';
import { kernelStatfs, loopMountUnavailable, walkDriver, walkMounted, withKernelMount } from '../../../../../test/support/kernel.ts';
import { toQcow2 } from '../../../../../test/support/guestDisk.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('lvm: logical volumes of a two-disk guest (against lvs and the kernel)', function () {
  this.timeout(300000);
  let fx: LvmGuest;
  let disks: string[];
  let qcow2: string[];
  let dir: string;

  before(async function () {
    const why = (await lvmUnavailable()) ?? (await loopMountUnavailable());
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    fx = await buildLvmGuest();
    disks = [fx.first.raw, fx.second];
    qcow2 = [await toQcow2(fx.first.raw), await toQcow2(fx.second)];
    dir = scratchDir('lvm-volumes');
  });

  async function withGuest<T>(images: string[], fn: (g: Guest) => Promise<T>): Promise<T> {
    return guardImages(images, async () => {
      const g = await openGuest(images, { overlay: false });
      try {
        return await fn(g);
      } finally {
        await g.close();
      }
    });
  }

  it('lists the partitions, then the public LVs by name (hidden raid images and metadata LVs are not devices)', async () => {
    await withGuest(disks, async (g) => {
      const list = (await g.filesystems()).map((f) => [f.device, f.type, f.consumedBy ?? '']);
      assert.deepEqual(list, [
        ['/dev/sda1', 'ext4', ''],
        ['/dev/sda2', 'LVM2_member', 'lvm2'],
        ['/dev/sdb', 'LVM2_member', 'lvm2'],
        ['/dev/guestvg/discontig', 'ext4', ''],
        ['/dev/guestvg/linear', 'ext4', ''],
        ['/dev/guestvg/mirror', 'ext4', ''],
        ['/dev/guestvg/striped', 'ext4', ''],
        ['/dev/guestvg/swap', 'swap', ''],
      ]);
      assert.deepEqual(g.warnings, []);
      const striped = await g.filesystem('/dev/guestvg/striped');
      assert.equal(striped?.kind, 'logical-volume');
      assert.equal(striped?.disk.device, '/dev/sda', 'an LV is on the disk of its first PV');
      assert.equal((await g.filesystem('/dev/guestvg/swap'))?.disk.device, '/dev/sdb');
    });
  });

  it('reads every LV as the bytes at the extents lvs reports, which are the filesystem image written there', async () => {
    await withGuest(disks, async (g) => {
      for (const [lv, image] of fx.images) {
        const info = (await g.filesystem(`/dev/guestvg/${lv}`))!;
        const ours = await info.source.read(0, info.size);
        const gathered = join(dir, `${lv}.gathered`);
        await gather(fx.layout, lv, gathered);
        const theirs = await readFile(gathered);
        assert.equal(ours.length, theirs.length, `${lv}: size`);
        assert.equal(sha(ours), sha(theirs), `${lv}: bytes at lvs's extents`);
        assert.equal(sha(ours), sha(await readFile(image)), `${lv}: the image written`);
        // Unaligned reads across stripe and segment boundaries.
        for (const [off, len] of [[65536 - 7, 20], [8 * 1024 * 1024 - 100, 300], [info.size - 513, 513], [1, 3 * 65536 + 5]].filter(([o, l]) => o + l <= info.size)) {
          assert.ok((await info.source.read(off, len)).equals(theirs.subarray(off, off + len)), `${lv}: ${len} bytes at ${off}`);
        }
      }
    });
  });

  it('reads the raid1 LV as each of its legs (both were written alike)', async () => {
    await withGuest(disks, async (g) => {
      const info = (await g.filesystem('/dev/guestvg/mirror'))!;
      const ours = await info.source.read(0, info.size);
      for (const leg of [0, 1]) {
        const file = join(dir, `mirror-leg${leg}`);
        await gather(fx.layout, 'mirror', file, leg);
        assert.equal(sha(await readFile(file)), sha(ours), `leg ${leg}`);
      }
    });
  });

  it('holds the filesystem the kernel mounts from the gathered bytes: statfs and the whole tree', async () => {
    await withGuest(qcow2, async (g) => {
      for (const lv of ['linear', 'discontig', 'striped', 'mirror']) {
        const gathered = join(dir, `${lv}.kernel`);
        await gather(fx.layout, lv, gathered);
        const { stat, tree } = await withKernelMount(gathered, {}, async (m) => ({ stat: await kernelStatfs(m.dir), tree: await walkMounted(m.dir, { exclude: ['/lost+found'] }) }));
        const fs = await (await g.filesystem(`/dev/guestvg/${lv}`))!.open();
        const ours = await fs.statfs();
        assert.deepEqual({ bsize: ours.bsize, blocks: ours.blocks, bfree: ours.bfree, bavail: ours.bavail, files: ours.files, ffree: ours.ffree, namelen: ours.namelen }, stat, `${lv}: statfs`);
        assert.deepEqual(await walkDriver(fs.fs, { exclude: ['/lost+found'] }), tree, `${lv}: tree`);
      }
    });
  });

  it('says where the qcow2 image below has holes: extent() of an LV delegates to the PVs', async () => {
    await withGuest(qcow2, async (g) => {
      for (const lv of ['striped', 'discontig']) {
        const info = (await g.filesystem(`/dev/guestvg/${lv}`))!;
        const bytes = await info.source.read(0, info.size);
        let covered = 0;
        const kinds = new Set<string>();
        for await (const e of extents(info.source)) {
          assert.equal(e.offset, covered);
          covered += e.length;
          kinds.add(e.kind);
          if (e.kind === 'zero') assert.ok(bytes.subarray(e.offset, e.offset + e.length).every((b) => b === 0), `${lv}: a zero extent at ${e.offset} holds data`);
        }
        assert.equal(covered, info.size);
        assert.deepEqual([...kinds].sort(), ['data', 'zero'], `${lv}: both data and holes`);
      }
    });
  });

  it('given only the first disk: names the LVs that need the second PV and reads the rest (raid1 from its leg on the first disk)', async () => {
    await withGuest([qcow2[0]], async (g) => {
      const list = (await g.filesystems()).map((f) => f.device);
      assert.deepEqual(list, ['/dev/sda1', '/dev/sda2', '/dev/guestvg/discontig', '/dev/guestvg/linear', '/dev/guestvg/mirror']);
      assert.deepEqual(
        g.warnings.map((w) => w.device),
        ['/dev/guestvg/striped', '/dev/guestvg/swap'],
      );
      const pv1 = fx.layout.pvs.get([...fx.layout.pvs.keys()][1])!.uuid;
      for (const w of g.warnings) {
        assert.match(w.message, /needs physical volume pv1 \(UUID [\w-]+, last seen as "\/dev\/loop\d+"\) of volume group guestvg, which is on none of the disks given/);
        assert.ok(w.message.includes(pv1));
        assert.equal(w.image, qcow2[0]);
      }
      const mirror = (await g.filesystem('/dev/guestvg/mirror'))!;
      assert.equal(sha(await mirror.source.read(0, mirror.size)), sha(await readFile(fx.images.get('mirror')!)));
    });
  });

  it('given only the second disk: a raid1 read from its second leg, the rest named', async () => {
    await withGuest([qcow2[1]], async (g) => {
      const list = (await g.filesystems()).map((f) => f.device);
      assert.deepEqual(list, ['/dev/sda', '/dev/guestvg/mirror', '/dev/guestvg/swap']);
      assert.deepEqual(g.warnings.map((w) => w.device), ['/dev/guestvg/discontig', '/dev/guestvg/linear', '/dev/guestvg/striped']);
      const mirror = (await g.filesystem('/dev/guestvg/mirror'))!;
      assert.equal(sha(await mirror.source.read(0, mirror.size)), sha(await readFile(fx.images.get('mirror')!)));
    });
  });
});
