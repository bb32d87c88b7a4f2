/**
 * FAT12/16/32 damage: mkfs.fat makes the volume, mtools fills it (mcopy -s of
 * the tree); the BPB gives the layout and the directories are walked here to
 * find entries. Edits are the kinds fsck.fat reports: BPB fields (sector and
 * cluster sizes, reserved sectors, FAT count and size, root entries, totals,
 * root cluster, FSInfo), FAT chains (a loop, a chain into the reserved
 * clusters or past the end, a free cluster inside a chain, the FATs
 * differing), directory entries (start cluster past the end or looping to the
 * parent, a huge size, a short entry turned into a long-name one, a long-name
 * checksum wrong, deleted). Truncations at the BPB, the FATs, the root
 * directory and the data area; bit flips in the BPB, FAT and directories.
 * This kernel has no vfat: no kernel oracle.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { bitflips, haveTools, putLe, readAt, tool, truncations, writeAt, type DamageCase, type ReaderFactory } from './damage.ts';
import { writeTree } from './tree.ts';

interface Layout {
  bps: number;
  clusterSize: number;
  fatStart: number;
  fatSize: number;
  numFats: number;
  rootDir: number;
  rootSize: number;
  dataStart: number;
  rootCluster: number;
  fsInfo: number;
}

function layoutOf(image: string, bits: 12 | 16 | 32): Layout {
  const b = readAt(image, 0, 512);
  const bps = b.readUInt16LE(0x0b);
  const fatSectors = bits === 32 ? b.readUInt32LE(0x24) : b.readUInt16LE(0x16);
  const fatStart = b.readUInt16LE(0x0e) * bps;
  const numFats = b[0x10];
  const rootDir = fatStart + numFats * fatSectors * bps;
  const rootSize = b.readUInt16LE(0x11) * 32;
  return { bps, clusterSize: bps * b[0x0d], fatStart, fatSize: fatSectors * bps, numFats, rootDir, rootSize, dataStart: rootDir + Math.ceil(rootSize / bps) * bps, rootCluster: bits === 32 ? b.readUInt32LE(0x2c) : 0, fsInfo: bits === 32 ? b.readUInt16LE(0x30) * bps : 0 };
}

function fatFactory(bits: 12 | 16 | 32): ReaderFactory {
  return async (dir) => {
    const missing = await haveTools(['mkfs.fat', 'mcopy']);
    if (missing) return { unavailable: missing };
    const r = `fat${bits}`;
    const base = join(dir, `${r}-base.img`);
    const sizeKiB = bits === 12 ? 1440 : bits === 16 ? 16384 : 40960;
    await tool('mkfs.fat', ['-C', '-F', String(bits), '-n', 'DAMAGED', ...(bits === 32 ? ['-s', '1'] : []), base, String(sizeKiB)]);
    const stage = join(dir, `${r}-tree`);
    mkdirSync(stage, { recursive: true });
    writeTree(stage, false);
    await tool('mcopy', ['-s', '-i', base, ...readdirSync(stage).map((n) => join(stage, n)), '::/']);
    const size = sizeKiB * 1024;
    const L = layoutOf(base, bits);
    const clusterAt = (c: number) => L.dataStart + (c - 2) * L.clusterSize;
    const rootAt = bits === 32 ? clusterAt(L.rootCluster) : L.rootDir;
    const rootLen = bits === 32 ? L.clusterSize : L.rootSize;
    /** The absolute offset of the short entry named `name` (8.3, padded) in a directory region. */
    const entry = (at: number, length: number, name: string): number => {
      const d = readAt(base, at, length);
      for (let o = 0; o + 32 <= length; o += 32) if (d[o + 11] !== 0x0f && d.toString('latin1', o, o + 11) === name) return at + o;
      throw new Error(`${r}: no ${name} entry`);
    };
    const startOf = (e: number) => { const d = readAt(base, e, 32); return (d.readUInt16LE(20) << 16) | d.readUInt16LE(26); };
    const etc = entry(rootAt, rootLen, 'ETC        ');
    const many = entry(rootAt, rootLen, 'MANY       ');
    const varDir = startOf(entry(rootAt, rootLen, 'VAR        '));
    const logDir = startOf(entry(clusterAt(varDir), L.clusterSize, 'LOG        '));
    const messages = entry(clusterAt(logDir), L.clusterSize, 'MESSAGES   ');
    const confd = entry(clusterAt(startOf(etc)), L.clusterSize, 'CONF    D  ');
    const fatSlot = (n: number, copy: number): { at: number; width: 2 | 4; shift: number; mask: number } => {
      const at = L.fatStart + copy * L.fatSize;
      if (bits === 32) return { at: at + n * 4, width: 4, shift: 0, mask: 0x0fffffff };
      if (bits === 16) return { at: at + n * 2, width: 2, shift: 0, mask: 0xffff };
      return { at: at + Math.floor(n * 1.5), width: 2, shift: n & 1 ? 4 : 0, mask: 0xfff };
    };
    const getFat = (image: string, n: number, copy = 0) => {
      const s = fatSlot(n, copy);
      return (readAt(image, s.at, s.width).readUIntLE(0, s.width) >>> s.shift) & s.mask;
    };
    const fatEntry = (image: string, n: number, value: number, copy = 0) => {
      const s = fatSlot(n, copy);
      const old = readAt(image, s.at, s.width).readUIntLE(0, s.width);
      putLe(image, s.at, s.width, ((old & ~(s.mask << s.shift)) | ((value & s.mask) << s.shift)) >>> 0);
    };
    const max = bits === 12 ? 0xff7 : bits === 16 ? 0xfff7 : 0x0ffffff7;
    const edit = (what: string, change: (image: string) => void, ls = false): DamageCase => ({ reader: r, technique: 'edit', name: `${r}/${what}`, ls, damage: async (image) => change(image) });
    const bpb = (name: string, off: number, width: 1 | 2 | 4, value: number) => edit(`bpb-${name}-${value}`, (image) => putLe(image, off, width, value));
    const manyStart = startOf(many);
    const messagesStart = startOf(messages);
    const cases: DamageCase[] = [
      bpb('bytes-per-sector', 0x0b, 2, 0),
      bpb('bytes-per-sector', 0x0b, 2, 3),
      bpb('sectors-per-cluster', 0x0d, 1, 0),
      bpb('sectors-per-cluster', 0x0d, 1, 3),
      bpb('reserved-sectors', 0x0e, 2, 0),
      bpb('fats', 0x10, 1, 0),
      bpb('fats', 0x10, 1, 5),
      bpb('media', 0x15, 1, 0),
      bpb(bits === 32 ? 'fat-size32' : 'fat-size16', bits === 32 ? 0x24 : 0x16, bits === 32 ? 4 : 2, 0),
      bpb('total-sectors32', 0x20, 4, 0xfffffff0),
      ...(bits === 32
        ? [bpb('root-cluster', 0x2c, 4, 0), bpb('root-cluster', 0x2c, 4, 1), bpb('root-cluster', 0x2c, 4, 0x0ffffff0), bpb('fsinfo-sector', 0x30, 2, 0xfff0),
          edit('fsinfo-free-huge', (image) => putLe(image, L.fsInfo + 488, 4, 0x7fffffff)), edit('fsinfo-signature-0', (image) => putLe(image, L.fsInfo, 4, 0))]
        : [bpb('root-entries', 0x11, 2, 0), bpb('root-entries', 0x11, 2, 3), bpb('total-sectors16', 0x13, 2, 0xfff0)]),
      bpb('signature', 510, 2, 0),
      edit('fat-many-self-loop', (image) => { fatEntry(image, manyStart, manyStart); fatEntry(image, manyStart, manyStart, 1); }, true),
      edit('fat-messages-to-1', (image) => { fatEntry(image, messagesStart + 3, 1); fatEntry(image, messagesStart + 3, 1, 1); }, true),
      edit('fat-messages-past-end', (image) => { fatEntry(image, messagesStart + 3, max - 1); fatEntry(image, messagesStart + 3, max - 1, 1); }, true),
      edit('fat-messages-free-in-chain', (image) => { fatEntry(image, messagesStart + 3, 0); fatEntry(image, messagesStart + 3, 0, 1); }, true),
      edit('fat-messages-loop-back', (image) => { fatEntry(image, messagesStart + 9, messagesStart); fatEntry(image, messagesStart + 9, messagesStart, 1); }, true),
      edit('fat-copies-differ', (image) => writeAt(image, L.fatStart + 16, Buffer.alloc(L.bps - 16))),
      edit('fat-media-mismatch', (image) => putLe(image, L.fatStart, 1, 0xf0)),
      edit('fat-free-marked-bad', (image) => {
        for (let n = 2; n < Math.min(4000, Math.floor((L.fatSize * 8) / bits)); n++) if (getFat(image, n) === 0) for (let c = 0; c < L.numFats; c++) fatEntry(image, n, max, c);
      }),
      edit('dir-many-start-past-end', (image) => putLe(image, many + 26, 2, 0xfff0), true),
      edit('dir-many-start-0', (image) => { putLe(image, many + 26, 2, 0); putLe(image, many + 20, 2, 0); }, true),
      edit('dir-confd-loops-to-etc', (image) => { putLe(image, confd + 26, 2, startOf(etc) & 0xffff); putLe(image, confd + 20, 2, startOf(etc) >>> 16); }, true),
      edit('dir-etc-is-file', (image) => putLe(image, etc + 11, 1, 0x20), true),
      edit('dir-etc-deleted', (image) => putLe(image, etc, 1, 0xe5), true),
      edit('dir-etc-attr-lfn', (image) => putLe(image, etc + 11, 1, 0x0f), true),
      edit('dir-lfn-checksum-wrong', (image) => putLe(image, many - 32 + 13, 1, readAt(image, many - 32 + 13, 1)[0] ^ 0x55), true),
      edit('file-messages-size-huge', (image) => putLe(image, messages + 28, 4, 0xffffffff), true),
      edit('file-messages-start-past-end', (image) => putLe(image, messages + 26, 2, 0xfff0), true),
      ...truncations(r, [
        ['in-boot-sector', 256],
        ['after-boot-sector', 512],
        ...(bits === 32 ? [['after-fsinfo', L.fsInfo + 512] as [string, number]] : []),
        ['at-fat1', L.fatStart],
        ['in-fat1', L.fatStart + Math.floor(L.fatSize / 2)],
        ['at-fat2', L.fatStart + L.fatSize],
        ['at-root-directory', rootAt],
        ['in-root-directory', rootAt + 512],
        ['at-data', L.dataStart],
        ['at-many-directory', clusterAt(manyStart)],
        ['at-messages', clusterAt(messagesStart)],
        ['in-messages', clusterAt(messagesStart) + 100_000],
        ['last-sector', size - 512],
      ], size),
      ...bitflips(r, [
        ['bpb', 0, 90],
        ['fat1-head', L.fatStart, Math.min(L.fatSize, 1024)],
        ['both-fats-head', L.fatStart, 2 * L.fatSize],
        ['root-directory', rootAt, Math.min(rootLen, 2048)],
        ['many-directory', clusterAt(manyStart), L.clusterSize],
        ...(bits === 32 ? [['fsinfo', L.fsInfo, 512] as [string, number, number]] : []),
      ], [1, 2, 3]),
    ];
    return { reader: r, base, cases, noKernel: 'this kernel has no vfat' };
  };
}

export const fat12Corpus = fatFactory(12);
export const fat16Corpus = fatFactory(16);
export const fat32Corpus = fatFactory(32);
