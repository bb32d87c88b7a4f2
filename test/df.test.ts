/**
 * guestlens df end to end: partitioned guest disks made with real tools, the
 * kernel (a read-only loop mount of each filesystem + stat -f) as the oracle
 * for every number, in text, CSV and JSON; the images never change.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { execa } from 'execa';
import { buildDisk, toQcow2, type BuiltDisk } from './support/guestDisk.ts';
import { kernelStatfs, loopMountUnavailable, withKernelMount } from './support/kernel.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, repoRoot, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';
import { dfHeader, dfRow } from '../cli/src/df/dfOutput.ts';
import { startHolder } from './support/qemuHolders.ts';

type Kstat = Awaited<ReturnType<typeof kernelStatfs>>;

const files = {
  'etc/hostname': 'dfguest\n',
  'var/log/messages': 'hello\n'.repeat(5000),
  'home/u/blob': Buffer.alloc(700 * 1024, 7),
};

interface Fixture {
  disk: BuiltDisk;
  qcow2: string;
  /** device -> what the kernel says */
  kernel: Map<string, Kstat>;
  fstypes: Map<string, string>;
}

/** The kernel's numbers for every ext partition of a disk, by device name. */
async function kernelView(disk: BuiltDisk, letter: string): Promise<Map<string, Kstat>> {
  const view = new Map<string, Kstat>();
  for (const p of disk.partitions) {
    if (!('mkfs' in p.spec.content)) continue;
    const stat = await withKernelMount(disk.raw, { offset: p.offset, sizelimit: p.size }, (m) => kernelStatfs(m.dir));
    view.set(`/dev/sd${letter}${p.number}`, stat);
  }
  return view;
}

describe('guestlens df (kernel oracle)', function () {
  this.timeout(300000);
  let gpt: Fixture;
  let mbr: Fixture;

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run the kernel-oracle df tests here: ${why}`);
      this.skip();
    }
    const gptDisk = await buildDisk('gpt', 'gpt', [
      { sizeMiB: 24, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F', '-L', 'boot', '-b', '1024'], files: { 'vmlinuz': Buffer.alloc(300000, 1) } } },
      { sizeMiB: 64, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root', '-b', '4096'], files } },
      { sizeMiB: 8, content: { swap: true } },
      { sizeMiB: 40, content: { mkfs: 'mkfs.ext3', args: ['-q', '-F', '-L', 'data three'], files } },
      { sizeMiB: 4, content: { empty: true } },
      { sizeMiB: 48, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-O', '^64bit,^metadata_csum', '-b', '1024', '-L', 'old'], files } },
    ]);
    const mbrDisk = await buildDisk('mbr', 'dos', [
      { sizeMiB: 32, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-O', 'bigalloc', '-C', '16384', '-L', 'big'], files } },
      { sizeMiB: 32, logical: true, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-O', 'meta_bg,^resize_inode', '-L', 'meta'], files } },
      { sizeMiB: 16, logical: true, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F', '-L', 'logical2'] } },
    ]);
    const fstypes = (disk: BuiltDisk, letter: string) =>
      new Map(disk.partitions.filter((p) => 'mkfs' in p.spec.content).map((p) => [`/dev/sd${letter}${p.number}`, (p.spec.content as { mkfs: string }).mkfs.replace('mkfs.', '')]));
    gpt = { disk: gptDisk, qcow2: await toQcow2(gptDisk.raw), kernel: await kernelView(gptDisk, 'a'), fstypes: fstypes(gptDisk, 'a') };
    mbr = { disk: mbrDisk, qcow2: await toQcow2(mbrDisk.raw, undefined, ['-c']), kernel: await kernelView(mbrDisk, 'a'), fstypes: fstypes(mbrDisk, 'a') };
  });

  function expectedText(name: string, fx: Fixture, opts = { human: false, inodes: false, csv: false }): string {
    let s = dfHeader(opts);
    for (const [device, k] of fx.kernel) s += dfRow(name, device, k, opts);
    return s;
  }

  it('prints the kernel\'s numbers for every ext filesystem of a GPT qcow2 guest, skipping swap and empty partitions', async () => {
    const r = await guardImages([gpt.qcow2], () => guestlens(['df', gpt.qcow2]));
    assert.equal(r.stderr, '');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, expectedText(basename(gpt.qcow2), gpt));
  });

  it('matches the kernel in JSON, with type, label, UUID and exact=true', async () => {
    const r = await guardImages([gpt.qcow2], () => guestlens(['df', '--json', gpt.qcow2]));
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.map((x) => x.device), [...gpt.kernel.keys()]);
    for (const row of rows) {
      const k = gpt.kernel.get(row.device as string)!;
      assert.deepEqual(
        { bsize: row.bsize, blocks: row.blocks, bfree: row.bfree, bavail: row.bavail, files: row.files, ffree: row.ffree },
        { bsize: k.bsize, blocks: k.blocks, bfree: k.bfree, bavail: k.bavail, files: k.files, ffree: k.ffree },
        `${row.device}`,
      );
      assert.equal(row.guest, basename(gpt.qcow2));
      assert.equal(row.fstype, gpt.fstypes.get(row.device as string));
      assert.equal(row.exact, true);
      assert.match(String(row.uuid), /^[0-9a-f-]{36}$/);
    }
    assert.deepEqual(rows.map((x) => x.label), ['boot', 'root', 'data three', 'old']);
  });

  it('matches the kernel in CSV, with -i, and with -h', async () => {
    const name = basename(gpt.qcow2);
    for (const opts of [
      { human: false, inodes: false, csv: true },
      { human: false, inodes: true, csv: true },
      { human: false, inodes: true, csv: false },
      { human: true, inodes: false, csv: false },
    ]) {
      const flags = [...(opts.csv ? ['--csv'] : []), ...(opts.inodes ? ['-i'] : []), ...(opts.human ? ['-h'] : [])];
      const r = await guestlens(['df', ...flags, gpt.qcow2]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, expectedText(name, gpt, opts), flags.join(' '));
    }
  });

  it('reads MBR logical partitions (numbered from 5), bigalloc and meta_bg, from a compressed qcow2', async () => {
    const r = await guardImages([mbr.qcow2], () => guestlens(['df', mbr.qcow2]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual([...mbr.kernel.keys()], ['/dev/sda1', '/dev/sda5', '/dev/sda6']);
    assert.equal(r.stdout, expectedText(basename(mbr.qcow2), mbr));
  });

  it('names several -a disks as one guest: first name plus one "+" per extra disk, devices sda, sdb', async () => {
    const r = await guestlens(['df', '--csv', '-a', gpt.qcow2, '-a', mbr.qcow2]);
    assert.equal(r.exitCode, 0, r.stderr);
    const name = `${basename(gpt.qcow2)}+`;
    let expected = dfHeader({ human: false, inodes: false, csv: true });
    for (const [device, k] of gpt.kernel) expected += dfRow(name, device, k, { human: false, inodes: false, csv: true });
    for (const [device, k] of mbr.kernel) expected += dfRow(name, device.replace('/dev/sda', '/dev/sdb'), k, { human: false, inodes: false, csv: true });
    assert.equal(r.stdout, expected);
  });

  it('reads each positional image as its own guest; -P keeps argument order, and starts qemu-img from a helper, not from the process that parses', async () => {
    const dir = scratchDir('df-many');
    const images: string[] = [];
    for (let i = 0; i < 6; i++) {
      const link = join(dir, `guest-${i}.qcow2`);
      symlinkSync(i % 2 ? mbr.qcow2 : gpt.qcow2, link);
      images.push(link);
    }
    const serial = await guestlens(['df', '--csv', ...images]);
    // One trace file per process (-ff): no call of one is split around another's.
    const traces = join(dir, 'spawns');
    mkdirSync(traces);
    const traced = await execa('strace', ['-ff', '-qq', '-s', '512', '-e', 'trace=execve,clone,clone3,vfork', '-o', join(traces, 'pid'), join(repoRoot, 'cli', 'bin', 'guestlens'), 'df', '--csv', '-P', '4', ...images], { reject: false, stripFinalNewline: false });
    assert.equal(serial.exitCode, 0, serial.stderr);
    assert.equal(traced.exitCode, 0, traced.stderr);
    assert.equal(traced.stdout, serial.stdout);
    // Who started each qemu-img: its parent is the helper (`node -e`), never the guestlens process (which exec'd guestlens.mjs).
    const parentOf = new Map<string, string>();
    const execd = new Map<string, string>();
    for (const f of readdirSync(traces)) {
      const pid = f.slice('pid.'.length);
      for (const l of readFileSync(join(traces, f), 'utf8').split('\n')) {
        const child = /^(?:clone3?|vfork)\(.*\) = (\d+)$/.exec(l);
        if (child) parentOf.set(child[1], pid);
        if (/^execve\(/.test(l) && / = 0$/.test(l)) execd.set(pid, l);
      }
    }
    const pids = (re: RegExp) => [...execd].filter(([, l]) => re.test(l)).map(([pid]) => pid);
    const main = pids(/^execve\("[^"]*node", \["node", "[^"]*guestlens\.mjs"/);
    const helper = pids(/^execve\("[^"]*node", \["[^"]*node", "-e"/);
    const qemuImg = pids(/^execve\("[^"]*qemu-img"/);
    assert.equal(main.length, 1, `the guestlens process: ${main}`);
    assert.equal(helper.length, 1, `the helper: ${helper}`);
    assert.ok(qemuImg.length > images.length, `qemu-img --version, then a create per guest: ${qemuImg.length}`);
    for (const pid of qemuImg) assert.equal(parentOf.get(pid), helper[0], `qemu-img ${pid} started by ${parentOf.get(pid)}`);
    const names = serial.stdout.trim().split('\n').slice(1).map((l) => l.split(',')[0]);
    assert.deepEqual([...new Set(names)], images.map((p) => basename(p)));
  });

  it('reads raw images, and --format raw keeps a raw image raw', async () => {
    const r = await guardImages([gpt.disk.raw], () => guestlens(['df', '--format', 'raw', gpt.disk.raw]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, expectedText(basename(gpt.disk.raw), gpt));
  });
});

describe('guestlens df: what it cannot read is said, not hidden', function () {
  this.timeout(300000);

  it('reports a volume it cannot read (LUKS) on stderr and exits 3, still printing the others', async () => {
    const disk = await buildDisk('partial', 'gpt', [
      { sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'] } },
      {
        sizeMiB: 32,
        content: { mkfs: 'cryptsetup', args: ['luksFormat', '-q', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '/dev/zero', '--keyfile-size', '32'] },
      },
    ]);
    const image = await toQcow2(disk.raw);
    const r = await guardImages([image], () => guestlens(['df', image]));
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stdout, /partial\.qcow2:\/dev\/sda1 /);
    assert.doesNotMatch(r.stdout, /sda2/);
    assert.match(r.stderr, /partial\.qcow2: \/dev\/sda2: .*LUKS/);
  });

  it('reports a corrupt ext filesystem with the device and reason, exit 3', async () => {
    const disk = await buildDisk('corrupt', 'dos', [
      { sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'] } },
      { sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'] } },
    ]);
    // Destroy the second filesystem's group descriptor table (block 1 of a 1 KiB-block fs is the superblock; the GDT follows).
    const gdtOffset = disk.partitions[1].offset + 2048;
    await sh('dd', ['if=/dev/urandom', `of=${disk.raw}`, 'bs=1024', `seek=${gdtOffset / 1024}`, 'count=1', 'conv=notrunc', 'status=none']);
    const r = await guestlens(['df', disk.raw]);
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stdout, /:\/dev\/sda1 /);
    assert.match(r.stderr, /corrupt\.raw: \/dev\/sda2: /);
  });

  it('exits 1 with a clear message for a missing image, and 3 when other guests were read', async () => {
    const good = await buildDisk('good', 'dos', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'] } }]);
    const missing = join(scratchDir('df-missing'), 'no such image.qcow2');
    const one = await guestlens(['df', missing]);
    assert.equal(one.exitCode, 1);
    assert.equal(one.stdout.split('\n').length, 2, 'only the header');
    assert.match(one.stderr, /no such image\.qcow2.*(no such file|not found|does not exist)/i);
    assert.doesNotMatch(one.stderr, /\n\s+at /, 'no stack trace');
    const two = await guestlens(['df', missing, good.raw]);
    assert.equal(two.exitCode, 3);
    assert.match(two.stdout, /good\.raw:\/dev\/sda1 /);
  });

  it('is a usage error (exit 2) with no image, with -h and --csv together, or with -P 0', async () => {
    for (const args of [['df'], ['df', '-h', '--csv', 'x.img'], ['df', '-P', '0', 'x.img'], ['df', '--csv', '--json', 'x.img']]) {
      const r = await guestlens(args);
      assert.equal(r.exitCode, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^guestlens: df: /);
    }
  });

  it('reads the file disks of a saved libvirt domain XML and names the network disk it cannot read, one naming no host (exit 3)', async () => {
    const a = await buildDisk('dom-a', 'dos', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'a'] } }]);
    const b = await buildDisk('dom-b', 'gpt', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F', '-L', 'b'] } }]);
    const bq = await toQcow2(b.raw);
    const xmlFile = join(scratchDir('domxml'), 'web.xml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      xmlFile,
      `<domain type='kvm'><name>web01</name><uuid>11111111-2222-3333-4444-555555555555</uuid><devices>
        <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${a.raw}'/><target dev='vda'/></disk>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${bq}'/><target dev='vdb'/></disk>
        <disk type='network' device='disk'><source protocol='nbd' name='export1'/><target dev='vdc'/></disk>
      </devices></domain>`,
    );
    const r = await guestlens(['df', '--csv', '--domain-xml', xmlFile]);
    assert.equal(r.exitCode, 3);
    assert.deepEqual(r.stdout.trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 2).join(',')), ['web01,/dev/sda1', 'web01,/dev/sdb1']);
    assert.match(r.stderr, /web01: disk vdc \(nbd nbd:\/\/\/export1\): names no <host> to read the nbd disk from/);
    const u = await guestlens(['df', '--csv', '--uuid', '--domain-xml', xmlFile]);
    assert.match(u.stdout, /^11111111-2222-3333-4444-555555555555,\/dev\/sda1,/m);
  });
});

describe('guestlens df: damage, and images being written', function () {
  this.timeout(180000);

  /** A 32 MiB ext4 (metadata_csum) raw image, and the kernel's statfs of it. */
  async function ext4Image(name: string): Promise<{ image: string; dir: string }> {
    const dir = scratchDir(name);
    const image = join(dir, `${name}.raw`);
    await sh('truncate', ['-s', '32M', image]);
    await sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', 'metadata_csum', image]);
    return { image, dir };
  }

  /** Flip a bit of a 16-bit field (a checksum), so it no longer matches. */
  async function spoil(image: string, offset: number): Promise<void> {
    const { openSync, readSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(image, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, offset);
    closeSync(fd);
  }

  it('a group-descriptor checksum mismatch is read as the kernel\'s read-only mount reads it: its numbers, and what was tolerated on stderr', async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const { image } = await ext4Image('gd-csum');
    // Group descriptor 0 sits in block 1; bg_checksum is at byte 0x1E of it.
    await spoil(image, 4096 + 0x1e);
    const kernel = await withKernelMount(image, {}, (m) => kernelStatfs(m.dir));
    const r = await guardImages([image], () => guestlens(['df', '--json', '--format', 'raw', image]));
    assert.equal(r.exitCode, 0, r.stderr);
    const [row] = JSON.parse(r.stdout) as { bfree: number; blocks: number; bavail: number; ffree: number; files: number; exact: boolean }[];
    assert.deepEqual([row.blocks, row.bfree, row.bavail, row.files, row.ffree], [kernel.blocks, kernel.bfree, kernel.bavail, kernel.files, kernel.ffree]);
    assert.equal(row.exact, true);
    assert.match(r.stderr, /^guestlens: df: gd-csum\.raw:\/dev\/sda: group descriptor 0 \(byte offset 4096\) fails its checksum .*read anyway, as the kernel's read-only mount does/m);
  });

  it('damage on an image nobody writes is reported at once, naming the image and device once, never "retry"', async () => {
    const { image } = await ext4Image('torn-forever');
    // The superblock's own checksum (s_checksum, the last 4 bytes of it): the kernel refuses such a filesystem.
    await spoil(image, 1024 + 0x3fc);
    for (const args of [['--format', 'raw', image], [await toQcow2(image)]]) {
      const r = await guardImages([args.at(-1)!], () => guestlens(['df', ...args]));
      assert.equal(r.exitCode, 3, r.stderr);
      const name = basename(args.at(-1)!);
      assert.match(r.stderr, new RegExp(`^guestlens: df: ${name.replace('.', '\\.')}: /dev/sda: checksum mismatch in superblock \\(byte offset 1024\\)`));
      assert.doesNotMatch(r.stderr, /guestlens-overlay|\.overlay\.qcow2/, 'the temporary overlay is never named');
      assert.equal(r.stderr.split('/dev/sda').length, 2, `the device is named once: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /retry|being written|writing it/i);
    }
  });

  it('an image a QEMU holds read-write is read again (after a refresh) and the message says who writes it', async () => {
    const { image } = await ext4Image('torn-live');
    await spoil(image, 1024 + 0x3fc);
    const qcow2 = await toQcow2(image);
    const holder = await startHolder('qsd writable', qcow2, 'qcow2');
    try {
      const r = await guestlens(['df', qcow2]);
      assert.equal(r.exitCode, 3, r.stderr);
      assert.match(r.stderr, /checksum mismatch in superblock .*\(.*torn-live\.qcow2 is in use read-write by qemu-storage-daemon \(pid \d+\); read 3 times\)/);
    } finally {
      await holder.stop();
    }
  });
});

describe('guestlens df: what is not there is said', function () {
  this.timeout(120000);

  it('a file with no filesystem at all (text, zeros) is reported on stderr with exit 3, not an empty answer', async () => {
    const dir = scratchDir('df-nothing');
    const { writeFileSync } = await import('node:fs');
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'just some text, not a disk\n'.repeat(100));
    const zeros = join(dir, 'zeros.img');
    await sh('truncate', ['-s', '16M', zeros]);
    for (const image of [text, zeros]) {
      const r = await guardImages([image], () => guestlens(['df', image]));
      assert.equal(r.exitCode, 3, `${image}: ${r.stderr}`);
      assert.equal(r.stdout.split('\n').length, 2, 'only the header');
      assert.match(r.stderr, new RegExp(`df: ${basename(image).replace('.', '\\.')}: /dev/sda: no filesystem, partition table or volume that guestlens recognises was found`));
    }
  });

  it('reads a filesystem over the whole disk whose boot sector has an empty MBR (LILO\'s 0x55AA), as libguestfs does', async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const dir = scratchDir('df-lilo');
    const image = join(dir, 'lilo.img');
    await sh('truncate', ['-s', '16M', image]);
    await sh('mkfs.ext2', ['-q', '-F', '-L', 'lilo', image]);
    await sh('dd', ['of=' + image, 'bs=1', 'seek=510', 'conv=notrunc', 'status=none'], { input: Buffer.from([0x55, 0xaa]) });
    const blkid = await sh('blkid', ['-p', '-o', 'export', image]).catch((e: Error) => e.message);
    assert.match(blkid, /PTTYPE=dos/);
    const kernel = await withKernelMount(image, {}, (m) => kernelStatfs(m.dir));
    const r = await guestlens(['df', '--format', 'raw', image]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, dfHeader({ human: false, inodes: false, csv: false }) + dfRow('lilo.img', '/dev/sda', kernel, { human: false, inodes: false, csv: false }));
  });

  it('reads an ext4 marked test_fs (blkid says ext4dev) like any ext4, with the kernel\'s numbers', async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const dir = scratchDir('df-ext4dev');
    const image = join(dir, 'dev.img');
    await sh('truncate', ['-s', '32M', image]);
    await sh('mkfs.ext4', ['-q', '-F', image]);
    await sh('tune2fs', ['-E', 'test_fs', image]);
    assert.match(await sh('blkid', ['-p', '-o', 'export', image]), /TYPE=ext4dev/);
    const kernel = await withKernelMount(image, { fstype: 'ext4' }, (m) => kernelStatfs(m.dir));
    const r = await guestlens(['df', '--json', '--format', 'raw', image]);
    assert.equal(r.exitCode, 0, r.stderr);
    const [row] = JSON.parse(r.stdout) as { fstype: string; blocks: number; bfree: number; ffree: number }[];
    assert.equal(row.fstype, 'ext4dev');
    assert.deepEqual([row.blocks, row.bfree, row.ffree], [kernel.blocks, kernel.bfree, kernel.ffree]);
  });
});
