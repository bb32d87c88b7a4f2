/**
 * NTFS fixtures made with the real tools: mkntfs -Q on a file, then a
 * read-write ntfs-3g mount (streams_interface=windows, so "file:stream"
 * writes a named stream) that fills it with what the driver must read:
 * resident and non-resident files, a big sparse file, an LZNT1-compressed
 * directory (system.ntfs_attrib_be), hard links (enough of them to need an
 * attribute list), a fragmented file (its runlist spills into extension
 * records), a directory big enough for a multi-level index, Unicode, long,
 * case-differing and DOS names, times before 1970 and far ahead, Windows
 * symlinks and junctions and other reparse tags (system.ntfs_reparse_data),
 * and Interix links, FIFOs, sockets and devices (ln -s, mkfifo, mknod).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { link, mkdir, open, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { mkntfs, withNtfs3g } from '../../../../../test/support/ntfs3g.ts';

/** Deterministic bytes (xorshift), so content hashes are stable and not all zeros. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Text that LZNT1 compresses well. */
export function compressibleText(length: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'guest', 'lens', 'ntfs', 'cluster', 'record', 'index'];
  let s = '';
  for (let i = 0; s.length < length; i++) s += `${words[i % words.length]}${i % 7 === 0 ? '\n' : ' '}${i % 13 === 0 ? i : ''}`;
  return Buffer.from(s.slice(0, length));
}

// ---- reparse data as Windows writes it ---------------------------------------------

export function symlinkReparse(subst: string, print: string, relative: boolean): Buffer {
  const s = Buffer.from(subst, 'utf16le');
  const p = Buffer.from(print, 'utf16le');
  const head = Buffer.alloc(12);
  head.writeUInt16LE(0, 0);
  head.writeUInt16LE(s.length, 2);
  head.writeUInt16LE(s.length, 4);
  head.writeUInt16LE(p.length, 6);
  head.writeUInt32LE(relative ? 1 : 0, 8);
  return reparse(0xa000000c, Buffer.concat([head, s, p]));
}

export function junctionReparse(subst: string, print: string): Buffer {
  const s = Buffer.concat([Buffer.from(subst, 'utf16le'), Buffer.alloc(2)]);
  const p = Buffer.concat([Buffer.from(print, 'utf16le'), Buffer.alloc(2)]);
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0, 0);
  head.writeUInt16LE(s.length - 2, 2);
  head.writeUInt16LE(s.length, 4);
  head.writeUInt16LE(p.length - 2, 6);
  return reparse(0xa0000003, Buffer.concat([head, s, p]));
}

export function lxSymlinkReparse(target: string): Buffer {
  const t = Buffer.from(target, 'utf8');
  const v = Buffer.alloc(4);
  v.writeUInt32LE(2, 0);
  return reparse(0xa000001d, Buffer.concat([v, t]));
}

export function reparse(tag: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(tag >>> 0, 0);
  h.writeUInt16LE(data.length, 4);
  return Buffer.concat([h, data]);
}

async function setReparse(path: string, data: Buffer): Promise<void> {
  await sh('setfattr', ['-h', '-n', 'system.ntfs_reparse_data', '-v', `0x${data.toString('hex')}`, path]);
}

async function setAttrib(path: string, attrib: number): Promise<void> {
  await sh('setfattr', ['-h', '-n', 'system.ntfs_attrib_be', '-v', `0x${attrib.toString(16).padStart(8, '0')}`, path]);
}

export const BIG_DIR = '/big';
export const BIG_DIR_FILES = 1500;
export const LINKS_MANY = 90;
export const FRAGMENTS = 700;

export interface TreeImage {
  image: string;
  /** Paths whose named streams the test compares. */
  streamPaths: string[];
}

/** Fill a mounted (read-write, streams_interface=windows) NTFS volume. */
export async function populate(m: string, options: { compression?: boolean } = {}): Promise<string[]> {
  const files = join(m, 'files');
  await mkdir(files);
  for (const [i, size] of [0, 1, 100, 700, 4095, 4096, 4097, 65537, 300_000, 1_500_000].entries()) await writeFile(join(files, `f${size}`), pseudoRandom(size, i + 1));

  await mkdir(join(m, 'deep', 'a', 'b', 'c', 'd'), { recursive: true });
  await writeFile(join(m, 'deep', 'a', 'b', 'c', 'd', 'leaf.txt'), 'leaf\n');
  await mkdir(join(m, 'names'));
  for (const name of ['ünïcödé ☃', 'clef 𝄞 music', 'spaces and, commas', 'x'.repeat(255), 'Readme', 'README', 'readme.TXT', '日本語のファイル名']) {
    await writeFile(join(m, 'names', name), name);
  }

  // A directory whose index needs several levels of INDX blocks.
  await mkdir(join(m, BIG_DIR.slice(1)));
  for (let i = 0; i < BIG_DIR_FILES; i++) await writeFile(join(m, BIG_DIR.slice(1), `entry-${String(i).padStart(5, '0')}-${'n'.repeat(i % 40)}`), '');

  // Sparse: holes at the start, in the middle and at the end.
  const sparse = join(m, 'sparse');
  await mkdir(sparse);
  await writeFile(join(sparse, 'holes'), '');
  await truncate(join(sparse, 'holes'), 40 * 1024 * 1024 + 123);
  const fh = await open(join(sparse, 'holes'), 'r+');
  try {
    for (const [i, off] of [5 * 1024 * 1024, 5 * 1024 * 1024 + 70000, 20 * 1024 * 1024 - 3, 40 * 1024 * 1024 + 100].entries()) await fh.write(pseudoRandom(5000, 200 + i), 0, 5000 - (i === 3 ? 4977 : 0), off);
  } finally {
    await fh.close();
  }
  await writeFile(join(sparse, 'all-hole'), '');
  await truncate(join(sparse, 'all-hole'), 3 * 1024 * 1024);

  // Compressed: files created in a directory with the compressed attribute are LZNT1-compressed.
  const comp = join(m, 'compressed');
  await mkdir(comp);
  // NTFS compresses only with clusters up to 4 KiB; on larger ones the directory holds plain files.
  if (options.compression !== false) await setAttrib(comp, 0x800);
  await writeFile(join(comp, 'text'), compressibleText(400_000));
  await writeFile(join(comp, 'random'), pseudoRandom(200_000, 77));
  await writeFile(join(comp, 'zeros'), Buffer.alloc(1024 * 1024));
  await writeFile(join(comp, 'mixed'), Buffer.concat([compressibleText(70_000), pseudoRandom(70_000, 78), Buffer.alloc(140_000), compressibleText(33_333)]));
  await writeFile(join(comp, 'small'), 'tiny compressed file\n');
  await writeFile(join(comp, 'sparse-compressed'), '');
  await truncate(join(comp, 'sparse-compressed'), 2 * 1024 * 1024);
  const cf = await open(join(comp, 'sparse-compressed'), 'r+');
  try {
    await cf.write(compressibleText(10_000), 0, 10_000, 1024 * 1024 + 5);
  } finally {
    await cf.close();
  }

  // Hard links; so many on one file that its names need an attribute list.
  const links = join(m, 'links');
  await mkdir(links);
  await writeFile(join(links, 'target'), 'linked\n');
  await link(join(links, 'target'), join(links, 'second'));
  await link(join(links, 'target'), join(m, 'deep', 'third-link'));
  await writeFile(join(links, 'many'), pseudoRandom(50_000, 9));
  for (let i = 0; i < LINKS_MANY; i++) await link(join(links, 'many'), join(links, `many-link-with-a-long-name-${String(i).padStart(3, '0')}`));

  // Fragmented: data in every other cluster of a sparse file makes a runlist far longer than one MFT record holds.
  const frag = join(m, 'fragmented');
  await mkdir(frag);
  const fd = openSync(join(frag, 'checkerboard'), 'w');
  try {
    for (let i = 0; i < FRAGMENTS; i++) writeSync(fd, pseudoRandom(100, i + 1000), 0, 100, i * 2 * 65536 + (i % 3) * 4096);
  } finally {
    closeSync(fd);
  }

  // Named streams (alternate data streams), written through the windows interface.
  const streams = join(m, 'streams');
  await mkdir(streams);
  await writeFile(join(streams, 'host'), 'main data\n');
  await writeFile(join(streams, 'host:alpha'), 'alpha stream\n');
  await writeFile(join(streams, 'host:big'), pseudoRandom(100_000, 5));
  await writeFile(join(streams, 'host:Zone.Identifier'), '[ZoneTransfer]\r\nZoneId=3\r\n');
  await mkdir(join(streams, 'dir-with-stream'));
  await writeFile(join(streams, 'dir-with-stream:meta'), 'on a directory\n');
  await writeFile(join(streams, 'only-streams'), '');
  await writeFile(join(streams, 'only-streams:s1'), '');

  // Windows reparse points.
  const rp = join(m, 'reparse');
  await mkdir(join(rp, 'Target Dir', 'Sub'), { recursive: true });
  await writeFile(join(rp, 'Target Dir', 'File.txt'), 'through links\n');
  const reparsePoints: [string, 'file' | 'dir', Buffer][] = [
    ['rel-file', 'file', symlinkReparse('target dir\\file.TXT', 'target dir\\file.TXT', true)],
    ['rel-dot', 'file', symlinkReparse('.\\Target Dir\\File.txt', 'x', true)],
    ['rel-up', 'file', symlinkReparse('..\\reparse\\TARGET DIR\\file.txt', 'x', true)],
    ['rel-missing', 'file', symlinkReparse('no\\such\\thing', 'x', true)],
    ['abs-file', 'file', symlinkReparse('\\reparse\\target dir\\file.txt', 'x', true)],
    ['drive-rel', 'file', symlinkReparse('C:\\reparse\\Target Dir\\File.txt', 'x', true)],
    ['full-file', 'file', symlinkReparse('\\??\\C:\\REPARSE\\target dir\\File.txt', 'C:\\reparse\\Target Dir\\File.txt', false)],
    ['full-other-drive', 'file', symlinkReparse('\\??\\E:\\elsewhere\\file', 'E:\\elsewhere\\file', false)],
    ['full-kind-mismatch', 'file', symlinkReparse('\\??\\C:\\reparse\\Target Dir', 'x', false)],
    ['junction', 'dir', junctionReparse('\\??\\C:\\reparse\\target dir\\sub', 'C:\\reparse\\Target Dir\\Sub')],
    ['junction-missing', 'dir', junctionReparse('\\??\\C:\\Windows\\System32', 'C:\\Windows\\System32')],
    ['volume-junction', 'dir', junctionReparse('\\??\\Volume{01234567-89ab-cdef-0123-456789abcdef}\\', '')],
    ['dir-symlink', 'dir', symlinkReparse('Target Dir', 'Target Dir', true)],
    ['wsl-link', 'file', lxSymlinkReparse('../reparse/Target Dir/File.txt')],
    ['wof-compressed', 'file', reparse(0x80000017, Buffer.from('0100000002000000', 'hex'))],
    ['dedup', 'file', reparse(0x80000013, pseudoRandom(40, 3))],
    ['onedrive-placeholder', 'file', reparse(0x9000601a, pseudoRandom(20, 4))],
    ['bad-length', 'file', Buffer.concat([reparse(0xa000000c, Buffer.alloc(4)), Buffer.alloc(4)])],
  ];
  for (const [name, kind, data] of reparsePoints) {
    const p = join(rp, name);
    if (kind === 'dir') await mkdir(p);
    else await writeFile(p, name === 'wof-compressed' ? 'wof-backed content' : '');
    try {
      await setReparse(p, data);
    } catch {
      // ntfs-3g refuses data it finds inconsistent: that entry stays a plain file.
    }
  }

  // Interix files, as ntfs-3g makes them.
  const intx = join(m, 'interix');
  await mkdir(intx);
  await writeFile(join(intx, 'target'), 'interix target\n');
  await symlink('target', join(intx, 'link'));
  await symlink('/an/absolute/path/ü', join(intx, 'abs-link'));
  await sh('mkfifo', [join(intx, 'fifo')]);
  await sh('mknod', [join(intx, 'null'), 'c', '1', '3']);
  await sh('mknod', [join(intx, 'loop'), 'b', '7', '200']);
  await sh('python3', ['-c', 'import os,sys; os.mknod(sys.argv[1], 0o140644)', join(intx, 'socket')]);

  // A DOS 8.3 alias (hidden from listings, found by lookups), and DOS attributes.
  const dos = join(m, 'dos');
  await mkdir(dos);
  await writeFile(join(dos, 'A Long File Name.txt'), 'dos alias\n');
  await sh('setfattr', ['-n', 'system.ntfs_dos_name', '-v', 'ALONGF~1.TXT', join(dos, 'A Long File Name.txt')]);
  await writeFile(join(dos, 'hidden'), 'hidden\n');
  await setAttrib(join(dos, 'hidden'), 0x2);
  await writeFile(join(dos, 'system-hidden'), 'sys\n');
  await setAttrib(join(dos, 'system-hidden'), 0x6);
  await writeFile(join(dos, 'readonly'), 'ro\n');
  await setAttrib(join(dos, 'readonly'), 0x1);

  // Times: before 1970, nanoseconds, far ahead.
  const times = join(m, 'times');
  await mkdir(times);
  await writeFile(join(times, 'old'), 'old\n');
  await sh('touch', ['-m', '-d', '1960-03-04 05:06:07.123456789', join(times, 'old')]);
  await writeFile(join(times, 'ns'), 'ns\n');
  await sh('touch', ['-d', '2021-02-03 04:05:06.987654321', join(times, 'ns')]);
  await writeFile(join(times, 'future'), 'future\n');
  await utimes(join(times, 'future'), 4_102_444_800, 4_102_444_800.5);

  await mkdir(join(m, 'empty-dir'));
  await writeFile(join(m, 'empty-file'), '');
  return ['/streams/host', '/streams/dir-with-stream', '/streams/only-streams', '/files/f100'];
}

/** The tree fixture: a 128 MiB volume (4 KiB clusters unless told), filled by `populate`. */
export async function buildTreeImage(options: { clusterSize?: number; sizeMiB?: number; label?: string } = {}): Promise<TreeImage> {
  const dir = scratchDir('ntfs-tree');
  const image = await mkntfs(join(dir, 'tree.img'), { sizeMiB: options.sizeMiB ?? 128, label: options.label ?? 'guest tree', clusterSize: options.clusterSize });
  const compression = (options.clusterSize ?? 4096) <= 4096;
  const streamPaths = await withNtfs3g(image, { readWrite: true, options: ['streams_interface=windows'] }, (m) => populate(m, { compression }));
  return { image, streamPaths };
}
