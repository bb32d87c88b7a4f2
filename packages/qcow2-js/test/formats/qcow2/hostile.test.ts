/**
 * Hostile images: truncated files, offsets past the end, absurd sizes and
 * counts, out-of-range fields, broken compressed clusters, looping and
 * absurdly deep backing chains, header extensions running past the header
 * cluster. Each gets a typed error naming the image and the offset of the
 * bad structure, within bounded memory and time, with no file left open.
 */
import assert from 'node:assert/strict';
import { copyFile, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openImage, Qcow2Error, type ImageLayer, type OpenImageOptions } from '../../../src/index.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg, qemuIo } from '../../support/qemu.ts';
import { EXT_FEATURE_TABLE, findExtension, l2EntryOffset, patch, rawHeader, readU64, writeU32, writeU64 } from '../../support/patch.ts';

async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Open and read the whole disk; return the error it fails with (which must be a Qcow2Error). */
async function failure(image: string, options: OpenImageOptions = { format: 'qcow2' }): Promise<Qcow2Error> {
  let source: ImageLayer | undefined;
  try {
    source = await openImage(image, options);
    for (let off = 0; off < source.size; off += 4 * MiB) await source.read(off, Math.min(4 * MiB, source.size - off));
  } catch (err) {
    assert.ok(err instanceof Qcow2Error, `${image}: expected a Qcow2Error, got ${err instanceof Error ? err.stack : String(err)}`);
    assert.equal(err.userFacing, true);
    assert.ok(err.message.startsWith(`${image}: `) || err.image !== image, `error names the image: ${err.message}`);
    return err;
  } finally {
    await source?.close();
  }
  assert.fail(`${image}: read without error`);
}

function assertAtOffset(err: Qcow2Error, offset: number): void {
  assert.equal(err.offset, offset, err.message);
  assert.match(err.message, new RegExp(`at offset ${offset}, 0x${offset.toString(16)}`));
}

describe('qcow2-js hostile images', function () {
  this.timeout(120_000);
  let dir: string;
  let valid: string;
  let compressed: string;
  let fdsBefore: number;

  before(async () => {
    dir = scratchDir('hostile');
    const source = join(dir, 'source.raw');
    await makeRaw(source, 4 * MiB, [[0, 4 * MiB]], 5);
    valid = join(dir, 'valid.qcow2');
    await qemuImg(['convert', '-q', '-O', 'qcow2', source, valid]);
    compressed = join(dir, 'compressed.qcow2');
    await qemuImg(['convert', '-q', '-c', '-O', 'qcow2', source, compressed]);
    fdsBefore = await openFds();
  });

  after(async () => {
    assert.equal(await openFds(), fdsBefore, 'every file opened by a failed open or read is closed');
  });

  let n = 0;
  async function copyOf(image: string): Promise<string> {
    const copy = join(dir, `case-${++n}.qcow2`);
    await copyFile(image, copy);
    return copy;
  }

  describe('truncated images', () => {
    for (const [where, length] of [
      ['inside the magic', 3],
      ['inside the v2 fields', 50],
      ['inside the v3 fields', 100],
    ] as const) {
      it(`ends ${where} (${length} bytes)`, async () => {
        const image = await copyOf(valid);
        await truncate(image, length);
        const err = await guardImages([image], () => failure(image));
        assert.equal(err.kind, 'format');
        assert.match(err.message, /too short|ends inside/);
      });
    }

    it('without a format given, a file too short for the magic is raw (never guessed into anything else)', async () => {
      const image = await copyOf(valid);
      await truncate(image, 3);
      const source = await openImage(image);
      assert.equal(source.format, 'raw');
      assert.equal((await source.read(0, 3)).toString('latin1'), 'QFI');
      await source.close();
    });

    it('ends inside the L1 table', async () => {
      const image = await copyOf(valid);
      const h = await rawHeader(image);
      await truncate(image, h.l1TableOffset + 4);
      const err = await failure(image);
      assert.equal(err.kind, 'corrupt');
      assert.match(err.message, /L1 table .* runs past the end of the file/);
      assertAtOffset(err, 40);
    });

    it('ends inside an L2 table', async () => {
      const image = await copyOf(valid);
      const h = await rawHeader(image);
      const l2 = Number((await readU64(image, h.l1TableOffset)) & 0x00fffffffffffe00n);
      await truncate(image, l2 + 100);
      const err = await failure(image);
      assert.match(err.message, /L2 table 0 at offset \d+ lies past the end of the file/);
      assertAtOffset(err, h.l1TableOffset);
      assert.equal(err.retryable, true, 'a live image may still be growing');
    });

    it('ends before the data clusters: the first missing one is named with its L2 entry', async () => {
      const image = await copyOf(valid);
      const entry = await l2EntryOffset(image, 3 * MiB);
      const host = Number((await readU64(image, entry)) & 0x00fffffffffffe00n);
      await truncate(image, host);
      const err = await failure(image);
      assert.match(err.message, new RegExp(`data for guest offset ${3 * MiB} is at host offset ${host}, past the end of the file`));
      assertAtOffset(err, entry);
    });

    it('ends inside the last compressed cluster', async () => {
      const image = await copyOf(compressed);
      let last = 0;
      for (let guest = 0; guest < 4 * MiB; guest += 65536) {
        const e = await readU64(image, await l2EntryOffset(image, guest));
        if (e & (1n << 62n)) last = Math.max(last, Number(e & ((1n << 54n) - 1n)));
      }
      await truncate(image, last + 10);
      const err = await failure(image);
      assert.match(err.message, /compressed cluster for guest offset \d+ \(10 bytes at host offset \d+\) does not decompress/);
    });
  });

  describe('offsets and sizes that do not fit', () => {
    it('an L2 entry pointing far past the end of the file', async () => {
      const image = await copyOf(valid);
      const entry = await l2EntryOffset(image, MiB);
      await writeU64(image, entry, (1n << 63n) | (1n << 40n));
      const err = await failure(image);
      assert.equal(err.kind, 'corrupt');
      assert.match(err.message, new RegExp(`data for guest offset ${MiB} is at host offset ${2 ** 40}, past the end of the file`));
      assertAtOffset(err, entry);
    });

    it('a failed cluster while later L2 tables are still being read: one typed error, no unhandled rejection', async () => {
      const image = join(dir, 'many-l2.qcow2');
      await qemuImg(['convert', '-q', '-O', 'qcow2', '-o', 'cluster_size=512', join(dir, 'source.raw'), image]);
      const entry = await l2EntryOffset(image, 0);
      await writeU64(image, entry, (1n << 63n) | (1n << 40n));
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const source = await openImage(image);
        // One read spanning many L2 tables: the first cluster fails while the rest are still being mapped.
        await assert.rejects(source.read(0, 4 * MiB), (err: unknown) => err instanceof Qcow2Error && /past the end of the file/.test(err.message));
        await source.close();
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      assert.deepEqual(unhandled, []);
    });

    it('an L1 entry pointing past the end of the file', async () => {
      const image = await copyOf(valid);
      const h = await rawHeader(image);
      await writeU64(image, h.l1TableOffset, (1n << 63n) | (1n << 45n));
      const err = await failure(image);
      assert.match(err.message, /L2 table 0 at offset 35184372088832 lies past the end/);
      assertAtOffset(err, h.l1TableOffset);
    });

    it('an unaligned L2 table offset and an unaligned data cluster offset', async () => {
      const image = await copyOf(valid);
      const h = await rawHeader(image);
      const l1 = await readU64(image, h.l1TableOffset);
      await writeU64(image, h.l1TableOffset, l1 + 512n);
      assertAtOffset(await failure(image), h.l1TableOffset);
      const image2 = await copyOf(valid);
      const entry = await l2EntryOffset(image2, 0);
      await writeU64(image2, entry, (await readU64(image2, entry)) + 512n);
      const err = await failure(image2);
      assert.match(err.message, /host cluster offset \d+ for guest offset 0 is not cluster-aligned/);
      assertAtOffset(err, entry);
    });

    it('absurd l1_size: refused before anything is allocated', async () => {
      for (const l1Size of [0xffffffff, 4 * 1024 * 1024]) {
        const image = await copyOf(valid);
        await writeU32(image, 36, l1Size);
        const before = process.memoryUsage().arrayBuffers;
        const err = await failure(image);
        assert.ok(process.memoryUsage().arrayBuffers - before < 16 * MiB, 'no table-sized allocation');
        if (l1Size === 0xffffffff) {
          assert.match(err.message, /L1 table of 4294967295 entries is too large/);
          assertAtOffset(err, 36);
        } else {
          assert.match(err.message, /L1 table \(4194304 entries at offset \d+\) runs past the end of the file/);
        }
      }
    });

    it('an l1_size too small for the virtual size, and a virtual size beyond 2^53', async () => {
      const image = await copyOf(valid);
      await writeU32(image, 36, 0);
      assertAtOffset(await failure(image), 36);
      const image2 = await copyOf(valid);
      await writeU64(image2, 24, 1n << 60n);
      const err = await failure(image2);
      assert.match(err.message, /virtual size 1152921504606846976 is beyond what guestlens supports/);
      assertAtOffset(err, 24);
    });

    for (const bits of [0, 8, 22, 64, 0xffffffff]) {
      it(`cluster_bits ${bits}`, async () => {
        const image = await copyOf(valid);
        await writeU32(image, 20, bits);
        const err = await failure(image);
        assert.equal(err.kind, 'format');
        assert.match(err.message, new RegExp(`cluster_bits ${bits} is out of range \\(9\\.\\.21\\)`));
        assertAtOffset(err, 20);
      });
    }

    it('header_length larger than a cluster, backing_file_offset outside the first cluster, a backing name too long', async () => {
      const a = await copyOf(valid);
      await writeU32(a, 100, 70000);
      assertAtOffset(await failure(a), 100);
      const b = await copyOf(valid);
      await writeU64(b, 8, 70000n);
      assertAtOffset(await failure(b), 8);
      const c = await copyOf(valid);
      await writeU64(c, 8, 65000n);
      await writeU32(c, 16, 1000);
      const err = await failure(c);
      assert.match(err.message, /backing file name of 1000 bytes is too long/);
      assertAtOffset(err, 16);
    });

    it('header extensions running past the header cluster', async () => {
      const image = await copyOf(valid);
      const ext = await findExtension(image, EXT_FEATURE_TABLE);
      assert.ok(ext !== undefined);
      await writeU32(image, ext + 4, 0x10000);
      const err = await failure(image);
      assert.match(err.message, /header extension 0x6803f857 of 65536 bytes runs past the end of the header area \(65536\)/);
      assertAtOffset(err, ext);
    });
  });

  it('a read larger than the per-read limit is refused before anything is allocated', async () => {
    const image = join(dir, 'big-sparse.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', image, '2G']);
    const source = await openImage(image);
    try {
      await assert.rejects(source.read(0, 1024 * MiB), (err: unknown) => err instanceof Qcow2Error && err.kind === 'limit' && /read of 1073741824 bytes exceeds the limit of 268435456 bytes per read/.test(err.message));
    } finally {
      await source.close();
    }
    const raw = await openImage(join(dir, 'source.raw'), { maxReadBytes: MiB });
    await assert.rejects(raw.read(0, 2 * MiB), /exceeds the limit of 1048576 bytes per read/);
    await raw.close();
  });

  describe('compressed clusters', () => {
    it('a descriptor pointing past the end of the file', async () => {
      const image = await copyOf(compressed);
      const entry = await l2EntryOffset(image, 2 * MiB);
      const e = await readU64(image, entry);
      // Keep the flag and the sector count, move the offset far out.
      await writeU64(image, entry, (e & ~((1n << 54n) - 1n)) | (1n << 40n));
      const err = await failure(image);
      assert.match(err.message, new RegExp(`compressed cluster for guest offset ${2 * MiB} is at host offset ${2 ** 40}, past the end of the file`));
      assertAtOffset(err, entry);
    });

    it('a descriptor whose bytes are not a deflate stream', async () => {
      const image = await copyOf(compressed);
      const entry = await l2EntryOffset(image, MiB);
      const e = await readU64(image, entry);
      const host = Number(e & ((1n << 54n) - 1n));
      await patch(image, host, Buffer.alloc(64, 0xff));
      const err = await failure(image);
      assert.match(err.message, new RegExp(`compressed cluster for guest offset ${MiB} \\(\\d+ bytes at host offset ${host}\\) does not decompress to one deflate cluster`));
      assert.equal(err.retryable, true);
      assertAtOffset(err, entry);
    });
  });

  describe('backing chains', () => {
    it('an image that is its own backing file', async () => {
      const image = join(dir, 'self.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b', 'xelf.qcow2', image, '1M']);
      await renameBacking(image, 'xelf.qcow2', 'self.qcow2');
      const err = await failure(image);
      assert.equal(err.kind, 'chain');
      assert.match(err.message, /backing chain loops: "self.qcow2"/);
    });

    it('two images that name each other', async () => {
      const a = join(dir, 'loop-a.qcow2');
      const b = join(dir, 'loop-b.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b', 'loop-b.qcow2', a, '1M']);
      await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b', 'loop-a.qcow2', b, '1M']);
      const err = await failure(a);
      assert.match(err.message, new RegExp(`^${b}: backing chain loops: "loop-a.qcow2"`));
    });

    it('a chain 1000 images deep: refused at the depth limit, quickly, with bounded memory', async () => {
      const deep = scratchDir('deep');
      const template = join(deep, 'template.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b', 'd0000.qcow2', template, '1M']);
      const bytes = await readFile(template);
      const at = bytes.indexOf('d0000.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', join(deep, 'd0000.qcow2'), '1M']);
      for (let i = 1; i < 1000; i++) {
        Buffer.from(`d${String(i - 1).padStart(4, '0')}.qcow2`).copy(bytes, at);
        await writeFile(join(deep, `d${String(i).padStart(4, '0')}.qcow2`), bytes);
      }
      const top = join(deep, 'd0999.qcow2');
      const memory = process.memoryUsage().rss;
      const started = Date.now();
      const err = await failure(top);
      assert.equal(err.kind, 'chain');
      assert.match(err.message, /backing chain is deeper than 128 images/);
      assert.ok(Date.now() - started < 30_000);
      assert.ok(process.memoryUsage().rss - memory < 256 * MiB);
      // A caller who really has such a chain can raise the limit (and still gets its bytes).
      const shallow = join(deep, 'd0005.qcow2');
      const ok = await openImage(shallow, { maxChainDepth: 5 });
      assert.equal(ok.size, MiB);
      await ok.close();
      await assert.rejects(openImage(join(deep, 'd0006.qcow2'), { maxChainDepth: 5 }), /deeper than 5 images/);
    });
  });

  describe('entries that QEMU refuses', () => {
    it('a zero flag in a version 2 image', async () => {
      const image = join(dir, 'v2-zero.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', image, '1M']);
      await qemuIo(image, ['write -P 0x01 0 64k']);
      const entry = await l2EntryOffset(image, 0);
      await writeU64(image, entry, (await readU64(image, entry)) | 1n);
      const err = await failure(image);
      assert.match(err.message, /zero cluster entry for guest offset 0 in a version 2 image/);
      assertAtOffset(err, entry);
    });

    it('an extended L2 subcluster both allocated and zero', async () => {
      const image = join(dir, 'extl2-invalid.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', image, '1M']);
      await qemuIo(image, ['write -P 0x01 0 64k']);
      const entry = await l2EntryOffset(image, 0);
      await writeU32(image, entry + 8, 1);
      const err = await failure(image);
      assert.match(err.message, /invalid extended L2 entry for guest offset 0/);
      assertAtOffset(err, entry);
    });
  });
});

async function renameBacking(image: string, from: string, to: string): Promise<void> {
  const bytes = await readFile(image);
  const at = bytes.indexOf(from);
  assert.ok(at > 0 && from.length === to.length);
  await patch(image, at, Buffer.from(to));
}
