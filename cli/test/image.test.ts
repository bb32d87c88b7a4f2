/**
 * `guestlens image info` against `qemu-img info --backing-chain` (text and
 * JSON), and `guestlens image cat` against `qemu-img convert -O raw`: whole
 * disks, ranges, a reader that goes away, flat memory, bad input.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { guardImages } from '../../test/support/imageGuard.ts';
import { guestlens, repoRoot, sh } from '../../test/support/run.ts';
import { scratchDir } from '../../test/support/scratch.ts';

const MiB = 1024 * 1024;
const bin = join(repoRoot, 'cli', 'bin', 'guestlens.mjs');

async function qemuImg(args: string[]): Promise<string> {
  return sh('qemu-img', args);
}

async function qemuIo(image: string, commands: string[]): Promise<void> {
  await sh('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), image]);
}

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Run `guestlens ARGS`, hashing its standard output as it streams. */
async function catDigest(args: string[]): Promise<{ exitCode: number; stderr: string; sha256: string; bytes: number }> {
  const child = execa('node', [bin, ...args], { reject: false, buffer: { stdout: false, stderr: true }, stdin: 'ignore' });
  const h = createHash('sha256');
  let bytes = 0;
  child.stdout.on('data', (c: Buffer) => {
    h.update(c);
    bytes += c.length;
  });
  const r = await child;
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr), sha256: h.digest('hex'), bytes };
}

describe('guestlens image', function () {
  this.timeout(180_000);
  let dir: string;
  let base: string;
  let mid: string;
  let top: string;

  before(async () => {
    dir = scratchDir('cli-image');
    base = join(dir, 'base.raw');
    const data = Buffer.alloc(6 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(base, data);
    mid = join(dir, 'mid.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd,extended_l2=on,lazy_refcounts=on', '-F', 'raw', '-b', 'base.raw', mid, '8M']);
    await qemuIo(mid, ['write -P 0x11 1M 100k', 'write -z 3M 64k']);
    top = join(dir, 'top.qcow2');
    const json = `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: mid, locking: 'off' } })}`;
    await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', json, top, '7M']);
    await qemuIo(top, ['write -P 0x22 5M 1M', 'discard 1M 64k']);
  });

  describe('info', () => {
    it('prints what qemu-img info --backing-chain prints, for a json: overlay over qcow2 over raw', async () => {
      const expected = await qemuImg(['info', '--backing-chain', top]);
      const r = await guardImages([top, mid, base], () => guestlens(['image', 'info', top]));
      assert.equal(r.exitCode, 0, r.stderr);
      // guestlens adds the feature bits by name and who reads the image; the rest is qemu-img's text.
      assert.equal(r.stdout.replace(/^features: .*\n/m, '').replace(/^reader: guestlens \(native\)\n/m, ''), expected);
      assert.match(r.stdout, /^features: compression type, extended L2 entries, lazy refcounts$/m);
    });

    it('prints a v2 image as qemu-img does', async () => {
      const v2 = join(dir, 'v2.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', v2, '3G']);
      const r = await guestlens(['image', 'info', v2]);
      assert.equal(r.stdout, `${await qemuImg(['info', '--backing-chain', v2])}reader: guestlens (native)\n`);
    });

    it('--json has qemu-img\'s field names and values', async () => {
      const expected = JSON.parse(await qemuImg(['info', '--backing-chain', '--output=json', top])) as Record<string, unknown>[];
      const r = await guestlens(['image', 'info', '--json', top]);
      assert.equal(r.exitCode, 0, r.stderr);
      const ours = JSON.parse(r.stdout) as Record<string, unknown>[];
      assert.equal(ours.length, 3);
      for (const [i, theirs] of expected.entries()) {
        for (const key of ['filename', 'format', 'virtual-size', 'actual-size', 'cluster-size', 'dirty-flag', 'backing-filename', 'full-backing-filename', 'backing-filename-format', 'format-specific']) {
          assert.deepEqual(ours[i][key], theirs[key], `layer ${i} ${key}`);
        }
      }
      assert.deepEqual(ours[1].features, { incompatible: ['compression type', 'extended L2 entries'], compatible: ['lazy refcounts'], autoclear: [] });
    });

    it('shows an external data file only when allowed to open it', async () => {
      const image = join(dir, 'datafile.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'datafile.raw')}`, image, '1M']);
      const refused = await guestlens(['image', 'info', image]);
      assert.equal(refused.exitCode, 1);
      assert.match(refused.stderr, /^guestlens: .*datafile.qcow2: keeps its guest data in the external data file ".*datafile.raw"/);
      const r = await guestlens(['image', 'info', '--allow-external-data-file', image]);
      assert.equal(r.stdout, `${await qemuImg(['info', image])}features: external data file\nreader: guestlens (native)\n`);
    });

    it('refuses a backing file outside the directory with --backing same-dir, and any with --no-backing', async () => {
      const other = scratchDir('cli-image-other');
      const outside = join(other, 'outside.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, outside]);
      const r = await guestlens(['image', 'info', '--backing', 'same-dir', outside]);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /outside the image's directory/);
      const none = await guestlens(['image', 'info', '--no-backing', top]);
      assert.equal(none.exitCode, 1);
      assert.match(none.stderr, /backing policy is "none"/);
      const bad = await guestlens(['image', 'info', '--backing', 'sometimes', top]);
      assert.equal(bad.exitCode, 2);
    });
  });

  describe('cat', () => {
    it('writes the whole guest disk exactly as qemu-img convert -O raw does', async () => {
      const ref = join(dir, 'top.raw');
      await qemuImg(['convert', '-O', 'raw', top, ref]);
      const r = await guardImages([top, mid, base], () => catDigest(['image', 'cat', top]));
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.bytes, 7 * MiB);
      assert.equal(r.sha256, await sha256OfFile(ref));
    });

    it('writes a range given with --offset and --length (with size suffixes)', async () => {
      const ref = join(dir, 'top-range.raw');
      // qemu-img dd counts the skipped blocks in count=, unlike dd(1).
      await qemuImg(['dd', '-f', 'qcow2', '-O', 'raw', 'bs=64k', 'skip=15', 'count=35', `if=${top}`, `of=${ref}`]);
      const r = await catDigest(['image', 'cat', '--offset', '960k', '--length', '1280KiB', top]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.sha256, await sha256OfFile(ref));
      const tail = await catDigest(['image', 'cat', '--offset', String(7 * MiB - 3), top]);
      assert.equal(tail.bytes, 3);
    });

    it('a raw image (or --format raw) is written as is', async () => {
      const r = await catDigest(['image', 'cat', '--format', 'raw', base]);
      assert.equal(r.sha256, await sha256OfFile(base));
    });

    it('stops quietly when the reader goes away (| head)', async () => {
      const child = execa('node', [bin, 'image', 'cat', top], { reject: false, buffer: { stdout: false, stderr: true } });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      child.stdout.destroy();
      const r = await child;
      assert.equal(r.exitCode, 0);
      assert.equal(String(r.stderr), '');
    });

    it('streams a 1 GiB disk with flat memory (peak RSS under 150 MiB)', async () => {
      const big = join(dir, 'big.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', big, '1G']);
      const writes: string[] = [];
      for (let off = 0; off < 1024; off += 64) writes.push(`write -P 0x${(off & 0xff).toString(16) || '1'} ${off}M 48M`);
      await qemuIo(big, writes);
      const timeFile = join(dir, 'time.txt');
      const r = await execa('/usr/bin/time', ['-f', '%M', '-o', timeFile, 'node', bin, 'image', 'cat', big], { reject: false, stdout: 'ignore', stderr: 'pipe' });
      assert.equal(r.exitCode, 0, String(r.stderr));
      const { readFile } = await import('node:fs/promises');
      const peakKiB = Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop());
      assert.ok(peakKiB > 0 && peakKiB < 150 * 1024, `peak RSS ${peakKiB} KiB`);
    });

    it('gives clear errors for bad input', async () => {
      const missing = await guestlens(['image', 'cat', join(dir, 'nope.qcow2')]);
      assert.equal(missing.exitCode, 1);
      assert.match(missing.stderr, /^guestlens: .*nope\.qcow2: no such file or directory/);
      const sub = join(dir, 'a directory');
      await mkdir(sub, { recursive: true });
      const isDir = await guestlens(['image', 'info', sub]);
      assert.equal(isDir.exitCode, 1);
      assert.match(isDir.stderr, /^guestlens: .*a directory: not a regular file or block device/);
      const past = await guestlens(['image', 'cat', '--offset', '8M', top]);
      assert.equal(past.exitCode, 2);
      assert.match(past.stderr, /past the end of the guest disk \(7340032 bytes\)/);
      const badCount = await guestlens(['image', 'cat', '--length', 'lots', top]);
      assert.equal(badCount.exitCode, 2);
      assert.match(badCount.stderr, /--length lots: give a byte count/);
      const badFormat = await guestlens(['image', 'cat', '--format', 'qed', top]);
      assert.equal(badFormat.exitCode, 2);
      const corrupt = join(dir, 'corrupt.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', corrupt, '1M']);
      await sh('dd', ['if=/dev/zero', `of=${corrupt}`, 'bs=1', 'count=4', 'seek=20', 'conv=notrunc', 'status=none']);
      const r = await guestlens(['image', 'cat', '--format', 'qcow2', corrupt]);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /^guestlens: .*corrupt\.qcow2: cluster_bits 0 is out of range \(9\.\.21\) \(at offset 20, 0x14\)\n$/);
    });
  });
});
