/**
 * Thin pools and thin volumes. The kernel here has no device-mapper, so the
 * pool is made as LVM would leave it: its metadata LV holds what
 * thin_restore (thin-provisioning-tools) writes from a mapping we choose,
 * its data LV holds each mapped virtual block at the data block the mapping
 * names, and the VG text (vgcfgrestore --force checks it) has the pool, a
 * thin LV with ext4 on it, an empty thin LV, and a thin snapshot LVM keeps
 * inactive (activation skip, so libguestfs does not list it).
 *
 * Oracles: thin_dump (the btree lookups agree with its mappings, for every
 * virtual block), the ext4 image written (the thin LV's bytes), the kernel
 * (statfs of that image). Damage: a node CRC is a retryable error, an
 * all-zero metadata LV says the pool was never activated; mutation fuzzing
 * of the metadata blocks gives only typed errors.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { extents } from '@guestlens/block';
import { openGuest, type Guest, type ImageOpener } from '../../../src/index.ts';
import { Lvm2Assembler } from '../../../src/volumes/lvm/assembler.ts';
import { LvmError } from '../../../src/volumes/lvm/errors.ts';
import { THIN, ThinPoolMetadata } from '../../../src/volumes/lvm/thin.ts';
import { crc32c } from '../../../src/filesystems/crc32c.ts';
import { LvmFixture, lvPieces, lvmUnavailable, type VgLayout } from '../../../../../test/support/lvm.ts';
import { fakeId, insertLv } from '../../../../../test/support/lvmGuest.ts';
import { writeTree } from '../../../../../test/support/guestDisk.ts';
import { kernelStatfs, loopMountUnavailable, withKernelMount } from '../../../../../test/support/kernel.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../../../test/support/memorySource.ts';
import { Prng } from '../../../../../test/support/prng.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Mapping {
  device: number;
  vblock: number;
  dblock: number;
}

function thinXml(mappings: Mapping[], devices: number[], nrDataBlocks: number, transaction: number): string {
  const lines = [`<superblock uuid="" time="1" transaction="${transaction}" flags="0" version="2" data_block_size="${CHUNK / 512}" nr_data_blocks="${nrDataBlocks}">`];
  for (const d of devices) {
    const mine = mappings.filter((m) => m.device === d);
    lines.push(`  <device dev_id="${d}" mapped_blocks="${mine.length}" transaction="0" creation_time="0" snap_time="0">`);
    for (const m of mine) lines.push(`    <single_mapping origin_block="${m.vblock}" data_block="${m.dblock}" time="0"/>`);
    lines.push('  </device>');
  }
  lines.push('</superblock>');
  return `${lines.join('\n')}\n`;
}

/** thin_dump's view: device -> vblock -> dblock. */
async function thinDump(metadata: string): Promise<Map<number, Map<number, number>>> {
  const xml = await sh('thin_dump', [metadata]);
  const out = new Map<number, Map<number, number>>();
  let current: Map<number, number> | undefined;
  for (const line of xml.split('\n')) {
    const dev = /<device dev_id="(\d+)"/.exec(line);
    if (dev) out.set(Number(dev[1]), (current = new Map()));
    const single = /<single_mapping origin_block="(\d+)" data_block="(\d+)"/.exec(line);
    if (single) current!.set(Number(single[1]), Number(single[2]));
    const range = /<range_mapping origin_begin="(\d+)" data_begin="(\d+)" length="(\d+)"/.exec(line);
    if (range) for (let i = 0; i < Number(range[3]); i++) current!.set(Number(range[1]) + i, Number(range[2]) + i);
  }
  return out;
}

async function writeAt(file: string, buf: Buffer, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.write(buf, 0, buf.length, offset);
  } finally {
    await fh.close();
  }
}

/** Write `bytes` at byte `offset` of an LV, through the pieces lvs reports. */
async function writeLv(layout: VgLayout, lv: string, offset: number, bytes: Buffer): Promise<void> {
  for (const p of lvPieces(layout, lv)) {
    const from = Math.max(p.lvOffset, offset);
    const to = Math.min(p.lvOffset + p.length, offset + bytes.length);
    if (from < to) await writeAt(p.file, bytes.subarray(from - offset, to - offset), p.fileOffset + from - p.lvOffset);
  }
}

describe('lvm: thin pools and thin volumes (thin_restore/thin_dump, the kernel)', function () {
  this.timeout(300000);
  let dir: string;

  before(async function () {
    const why = (await lvmUnavailable()) ?? (await loopMountUnavailable());
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    if ((await execa('thin_restore', ['--version'], { reject: false })).exitCode !== 0) {
      console.log('      (skipped: thin_restore is not installed: Debian package thin-provisioning-tools)');
      this.skip();
    }
    dir = scratchDir('lvm-thin');
  });

  it('looks up every virtual block of three devices as thin_dump lists them (a btree of several levels)', async () => {
    const p = new Prng(77);
    const mappings: Mapping[] = [];
    const used = new Set<number>();
    for (const device of [1, 5, 9]) {
      for (let vblock = 0; vblock < 3000; vblock++) {
        if (p.below(3) === 0) continue;
        let dblock: number;
        do dblock = p.below(20000);
        while (used.has(dblock) && device === 1);
        used.add(dblock);
        mappings.push({ device, vblock, dblock });
      }
    }
    const xml = join(dir, 'many.xml');
    const metadata = join(dir, 'many.meta');
    await writeFile(xml, thinXml(mappings, [1, 5, 9], 20000, 1));
    await sh('truncate', ['-s', String(8 * MiB), metadata]);
    await sh('thin_restore', ['-i', xml, '-o', metadata]);
    const theirs = await thinDump(metadata);
    const meta = new ThinPoolMetadata(new MemorySource(await readFile(metadata), 'many.meta'), CHUNK / 512, 'vg/pool');
    for (const device of [1, 5, 9]) {
      const map = theirs.get(device)!;
      assert.ok(map.size > 1500);
      for (let vblock = 0; vblock < 3100; vblock++) {
        const ours = await meta.lookup(device, vblock);
        assert.equal(ours === undefined ? undefined : Number(ours), map.get(vblock), `device ${device} block ${vblock}`);
      }
    }
    await assert.rejects(meta.lookup(2, 0), /thin device 2 is not in the metadata of pool vg\/pool/);
  });

  describe('a VG with a thin pool, made with vgcfgrestore', () => {
    let disk: string;
    let image: string;
    let layout: VgLayout;
    let poolMappings: Mapping[];
    let freeBlocks: number[];


    before(async () => {
      disk = join(dir, 'thin.img');
      await sh('truncate', ['-s', String(96 * MiB), disk]);
      const f = await LvmFixture.create('thinvg', [{ file: disk, offset: 0, size: 96 * MiB }]);
      try {
        await f.lvcreate(['-n', 'tpool.tmeta', '-L', '4m', 'thinvg']);
        await f.lvcreate(['-n', 'tpool.tdata', '-L', '48m', 'thinvg']);
        await f.restore(join(dir, 'thin.txt'), (text) => {
          let t = text;
          for (const part of ['tmeta', 'tdata']) {
            t = t.replace(`\t\ttpool.${part} {`, `\t\ttpool_${part} {`);
            t = t.replace(new RegExp(`(\\t\\ttpool_${part} \\{[^]*?status = \\["READ", "WRITE"), "VISIBLE"\\]`), '$1]');
          }
          const lv = (name: string, flags: string, segment: string) =>
            `\t\t${name} {\n\t\t\tid = "${fakeId(name)}"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = [${flags}]\n\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {\n${segment}\t\t\t}\n\t\t}\n\n`;
          t = insertLv(t, lv('tpool', '', '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 12\n\t\t\t\ttype = "thin-pool"\n\t\t\t\tmetadata = "tpool_tmeta"\n\t\t\t\tpool = "tpool_tdata"\n\t\t\t\ttransaction_id = 3\n\t\t\t\tchunk_size = 128\n\t\t\t\tdiscards = "passdown"\n\t\t\t\tzero_new_blocks = 1\n'));
          t = insertLv(t, lv('thin1', '', '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 24\n\t\t\t\ttype = "thin"\n\t\t\t\tthin_pool = "tpool"\n\t\t\t\ttransaction_id = 0\n\t\t\t\tdevice_id = 1\n'));
          t = insertLv(t, lv('thin2', '', '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 4\n\t\t\t\ttype = "thin"\n\t\t\t\tthin_pool = "tpool"\n\t\t\t\ttransaction_id = 1\n\t\t\t\tdevice_id = 2\n'));
          t = insertLv(t, lv('thsnap', '"ACTIVATION_SKIP"', '\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 24\n\t\t\t\ttype = "thin"\n\t\t\t\tthin_pool = "tpool"\n\t\t\t\ttransaction_id = 2\n\t\t\t\tdevice_id = 3\n\t\t\t\torigin = "thin1"\n'));
          return t;
        }).catch(async (err: unknown) => {
          // LVM wants --force to restore metadata with thin volumes.
          if (!/force/i.test(String(err))) throw err;
          await f.lvm('vgcfgrestore', ['--force', '-f', join(dir, 'thin.txt'), 'thinvg']);
        });
        const lvs = await f.lvm('lvs', ['--reportformat', 'json', '-a', '-o', 'lv_name,segtype,pool_lv', 'thinvg']);
        assert.match(lvs, /"lv_name":"thin1", "segtype":"thin", "pool_lv":"tpool"/, 'LVM sees thin1 in tpool');
        layout = await f.layout();
      } finally {
        await f.detach();
      }
      // ext4 on a 96 MiB thin LV; only its non-zero 64 KiB blocks are mapped, to shuffled data blocks.
      image = join(dir, 'thin1.ext4');
      const tree = join(dir, 'thin1-tree');
      mkdirSync(tree, { recursive: true });
      writeTree(tree, { 'etc/hostname': 'thin\n', 'srv/data': Buffer.alloc(3 * MiB, 0x33), 'srv/small': 'small\n' });
      await sh('truncate', ['-s', String(96 * MiB), image]);
      await sh('mkfs.ext4', ['-q', '-F', '-L', 'thin1', '-d', tree, image]);
      const bytes = await readFile(image);
      const p = new Prng(5);
      const free = Array.from({ length: (48 * MiB) / CHUNK }, (_, i) => i);
      for (let i = free.length - 1; i > 0; i--) {
        const j = p.below(i + 1);
        [free[i], free[j]] = [free[j], free[i]];
      }
      const mappings: Mapping[] = [];
      for (let vblock = 0; vblock < bytes.length / CHUNK; vblock++) {
        const chunk = bytes.subarray(vblock * CHUNK, (vblock + 1) * CHUNK);
        if (chunk.every((b) => b === 0)) continue;
        const dblock = free.pop()!;
        mappings.push({ device: 1, vblock, dblock });
        // The snapshot shares every block of its origin, as a fresh thin snapshot does.
        mappings.push({ device: 3, vblock, dblock });
        await writeLv(layout, 'tpool_tdata', dblock * CHUNK, chunk);
      }
      poolMappings = mappings;
      freeBlocks = free;
      const xml = join(dir, 'pool.xml');
      const metadata = join(dir, 'pool.meta');
      await writeFile(xml, thinXml(mappings, [1, 2, 3], (48 * MiB) / CHUNK, 3));
      await sh('truncate', ['-s', String(4 * MiB), metadata]);
      await sh('thin_restore', ['-i', xml, '-o', metadata]);
      await writeLv(layout, 'tpool_tmeta', 0, await readFile(metadata));
    });

    async function withGuest<T>(fn: (g: Guest) => Promise<T>, disks = [disk], options: { openImage?: ImageOpener; assemblers?: Lvm2Assembler[] } = {}): Promise<T> {
      const g = await openGuest(disks, { overlay: false, ...options });
      try {
        return await fn(g);
      } finally {
        await g.close();
      }
    }

    it('lists the thin LVs (not the pool, its hidden LVs or the inactive snapshot) and reads thin1 as the ext4 written, holes as zeros', async () => {
      await withGuest(async (g) => {
        assert.deepEqual((await g.filesystems()).map((f) => [f.device, f.type]), [
          ['/dev/sda', 'LVM2_member'],
          ['/dev/thinvg/thin1', 'ext4'],
          ['/dev/thinvg/thin2', 'unknown'],
        ]);
        assert.deepEqual(g.warnings, []);
        const thin1 = (await g.filesystem('/dev/thinvg/thin1'))!;
        const ours = await thin1.source.read(0, thin1.size);
        assert.equal(sha(ours), sha(await readFile(image)));
        let zero = 0;
        for await (const e of extents(thin1.source)) {
          if (e.kind === 'zero') {
            zero += e.length;
            assert.ok(ours.subarray(e.offset, e.offset + e.length).every((b) => b === 0));
          }
        }
        assert.ok(zero > thin1.size / 2, 'unmapped blocks are holes');
        const thin2 = (await g.filesystem('/dev/thinvg/thin2'))!;
        assert.ok((await thin2.source.read(0, thin2.size)).every((b) => b === 0));
        const k = await withKernelMount(image, {}, (m) => kernelStatfs(m.dir));
        const st = await (await thin1.open()).statfs();
        assert.deepEqual([st.bsize, st.blocks, st.bfree, st.bavail, st.files, st.ffree], [k.bsize, k.blocks, k.bfree, k.bavail, k.files, k.ffree]);
        assert.equal((await (await thin1.open()).readFile('/srv/data')).length, 3 * MiB);
      });
    });

    it('sees blocks the pool mapped since the last read after a refresh (the block map is not kept across it)', async () => {
      const copy = join(dir, 'thin-live.img');
      await writeFile(copy, await readFile(disk));
      const guest = await openGuest([copy], { overlay: false });
      try {
        const thin2 = (await guest.filesystem('/dev/thinvg/thin2'))!;
        assert.ok((await thin2.source.read(0, CHUNK)).every((b) => b === 0), 'unmapped at first');
        // The "guest" writes its first block: a data block is filled and the pool's metadata maps it (a new commit).
        const dblock = freeBlocks[0];
        const live = { ...layout, pvs: new Map([...layout.pvs].map(([k, v]) => [k, { ...v, file: copy }])) };
        await writeLv(live, 'tpool_tdata', dblock * CHUNK, Buffer.alloc(CHUNK, 0x77));
        const xml = join(dir, 'pool2.xml');
        const metadata = join(dir, 'pool2.meta');
        await writeFile(xml, thinXml([...poolMappings, { device: 2, vblock: 0, dblock }], [1, 2, 3], (48 * MiB) / CHUNK, 3));
        await sh('truncate', ['-s', String(4 * MiB), metadata]);
        await sh('thin_restore', ['-i', xml, '-o', metadata]);
        await writeLv(live, 'tpool_tmeta', 0, await readFile(metadata));
        assert.deepEqual(await guest.refresh(), { devicesChanged: false });
        assert.ok((await thin2.source.read(0, CHUNK)).equals(Buffer.alloc(CHUNK, 0x77)), 'the new mapping is read');
      } finally {
        await guest.close();
      }
    });

    it('names the thin LVs when thin reading is off', async () => {
      await withGuest(
        async (g) => {
          assert.deepEqual((await g.filesystems()).map((f) => f.device), ['/dev/sda']);
          assert.deepEqual(g.warnings.map((w) => [w.device, w.message]), [
            ['/dev/thinvg/thin1', 'it is a thin volume in pool thinvg/tpool, which guestlens does not read'],
            ['/dev/thinvg/thin2', 'it is a thin volume in pool thinvg/tpool, which guestlens does not read'],
          ]);
        },
        [disk],
        { assemblers: [new Lvm2Assembler({ thin: false })] },
      );
    });

    it('a node whose CRC does not match is a retryable error; an all-zero metadata LV says the pool was never activated', async () => {
      const tmeta = lvPieces(layout, 'tpool_tmeta')[0];
      const bytes = await readFile(disk);
      // Damage the first leaf of thin1's block map: superblock -> top-level tree (device ids) -> device 1's tree -> its first leaf.
      const damaged = Buffer.from(bytes);
      const blockAt = (b: bigint) => tmeta.fileOffset + Number(b) * THIN.blockSize;
      const nodeAt = (b: bigint) => damaged.subarray(blockAt(b), blockAt(b) + THIN.blockSize);
      const top = nodeAt(damaged.readBigUInt64LE(tmeta.fileOffset + THIN.sb.data_mapping_root));
      assert.equal(top.readUInt32LE(THIN.node.flags), THIN.leafNode);
      const keys = Array.from({ length: top.readUInt32LE(THIN.node.nr_entries) }, (_, i) => top.readBigUInt64LE(32 + i * 8));
      let block = top.readBigUInt64LE(32 + top.readUInt32LE(THIN.node.max_entries) * 8 + keys.indexOf(1n) * 8);
      while (nodeAt(block).readUInt32LE(THIN.node.flags) === THIN.internalNode) block = nodeAt(block).readBigUInt64LE(32 + nodeAt(block).readUInt32LE(THIN.node.max_entries) * 8);
      const leaf = blockAt(block);
      damaged[leaf + 2000] ^= 0xff;
      const zeroed = Buffer.from(bytes);
      zeroed.fill(0, tmeta.fileOffset, tmeta.fileOffset + 4 * MiB);
      const cases: [Buffer, string[], RegExp, boolean][] = [
        [damaged, ['/dev/thinvg/thin1'], /checksum mismatch in the LVM2 thin pool thinvg\/tpool block map of thin device 1/, true],
        [zeroed, ['/dev/thinvg/thin1', '/dev/thinvg/thin2'], /thin pool thinvg\/tpool metadata superblock \(byte offset 0\) is damaged: it is all zeros \(the pool was never activated\)/, false],
      ];
      for (const [buf, devices, message, retryable] of cases) {
        await withGuest(
          async (g) => {
            const list = (await g.filesystems()).map((f) => f.device);
            for (const d of devices) assert.ok(!list.includes(d), `${d} is not listed`);
            assert.deepEqual(g.warnings.map((w) => w.device), devices);
            for (const w of g.warnings) {
              assert.match(w.message, message);
              assert.equal(w.retryable ?? false, retryable);
            }
          },
          [disk],
          { openImage: async (spec) => ({ source: new MemorySource(buf, spec.path), format: 'raw', close: async () => {} }) },
        );
      }
    });

    it('500 mutated metadata blocks: typed errors only, reads bounded', async () => {
      const tmeta = lvPieces(layout, 'tpool_tmeta')[0];
      const bytes = await readFile(disk);
      const p = new Prng(0x7417);
      for (let n = 0; n < 500; n++) {
        // One metadata block changed, as a patch over the unchanged disk (no copy of it per case).
        const source = new MemorySource(bytes, 'thin.img', bytes.length, THIN.blockSize, 5000);
        const block = p.below(8);
        const at = tmeta.fileOffset + block * THIN.blockSize;
        const changed = Buffer.from(bytes.subarray(at, at + THIN.blockSize));
        for (let k = 0; k < 1 + p.below(4); k++) changed[4 + p.below(THIN.blockSize - 4)] = p.below(256);
        // Half the cases get a good CRC again, so the damage reaches the btree walk.
        if (p.below(2) === 0) changed.writeUInt32LE((crc32c(0xffffffff, changed, 4) ^ (block === 0 ? THIN.superblockCsumXor : THIN.btreeCsumXor)) >>> 0, 0);
        source.patch(at, changed);
        await withGuest(
          async (g) => {
            for (const f of (await g.filesystems()).filter((d) => d.kind === 'logical-volume')) {
              await f.source.read(0, 1 * MiB).catch((err: unknown) => assert.ok(err instanceof LvmError || err instanceof ReadBudgetExceeded, `case ${n}: ${(err as Error)?.stack}`));
            }
            for (const w of g.warnings) assert.match(w.device, /^\/dev\/thinvg\/thin[12]$/, `case ${n}`);
          },
          [disk],
          { openImage: async () => ({ source, format: 'raw', close: async () => {} }) },
        );
      }
    });
  });
});
