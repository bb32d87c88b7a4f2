/**
 * NTFS damage: mkntfs makes the volume, ntfs-3g (read-write FUSE mount) fills
 * it; the boot sector gives the geometry and where $MFT and $MFTMirr are, and
 * the records' attribute lists are walked here to find the fields to edit:
 * boot sector fields, MFT record headers (magic, update sequence, first
 * attribute), attribute headers (length 0, type), non-resident $DATA of $MFT
 * and $Bitmap (runlists, sizes), index blocks (INDX). Truncations at the boot
 * sector, records of $MFT, $MFTMirr, the first index block and the backup
 * boot sector; bit flips in all of these. This kernel has no ntfs3: no
 * kernel oracle, so each answer or clear error is reported as such.
 */
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { mkntfs, ntfs3gUnavailable, withNtfs3g } from '../ntfs3g.ts';
import { bitflips, putLe, readAt, truncations, writeAt, type DamageCase, type ReaderFactory } from './damage.ts';
import { writeTree } from './tree.ts';

const SIZE_MIB = 16;
const ATTR = { STANDARD_INFORMATION: 0x10, FILE_NAME: 0x30, VOLUME_INFORMATION: 0x70, DATA: 0x80, INDEX_ROOT: 0x90, INDEX_ALLOCATION: 0xa0, BITMAP: 0xb0 } as const;

/** Offsets of the attributes in one MFT record (walked as on disk, bounded). */
function attributes(record: Buffer): Array<{ type: number; at: number; length: number; nonResident: boolean }> {
  const out = [];
  let at = record.readUInt16LE(0x14);
  for (let n = 0; n < 64 && at + 8 <= record.length; n++) {
    const type = record.readUInt32LE(at);
    if (type === 0xffffffff) break;
    const length = record.readUInt32LE(at + 4);
    if (length < 16 || at + length > record.length) break;
    out.push({ type, at, length, nonResident: record[at + 8] === 1 });
    at += length;
  }
  return out;
}

export const ntfsCorpus: ReaderFactory = async (dir) => {
  const missing = await ntfs3gUnavailable();
  if (missing) return { unavailable: missing };
  const r = 'ntfs';
  const base = join(dir, 'ntfs-base.img');
  await mkntfs(base, { sizeMiB: SIZE_MIB, label: 'damaged' });
  await withNtfs3g(base, { readWrite: true }, async (d) => writeTree(d));
  const size = statSync(base).size;
  const boot = readAt(base, 0, 512);
  const sector = boot.readUInt16LE(0x0b);
  const cluster = sector * boot[0x0d];
  const mft = Number(boot.readBigUInt64LE(0x30)) * cluster;
  const mftMirr = Number(boot.readBigUInt64LE(0x38)) * cluster;
  const cpr = boot.readInt8(0x40);
  const recordSize = cpr < 0 ? 2 ** -cpr : cpr * cluster;
  const record = (n: number) => readAt(base, mft + n * recordSize, recordSize);
  const attr = (n: number, type: number) => attributes(record(n)).find((a) => a.type === type);
  // The first index block on the volume (a directory's $INDEX_ALLOCATION): scanned for, cluster by cluster.
  let indx = -1;
  for (let at = mft + 64 * recordSize; at < size && indx < 0; at += cluster) if (readAt(base, at, 4).toString('latin1') === 'INDX') indx = at;
  const bitmapRun = (() => {
    const a = attr(6, ATTR.DATA);
    if (!a?.nonResident) return -1;
    const rec = record(6);
    const pairs = a.at + rec.readUInt16LE(a.at + 0x20);
    const h = rec[pairs];
    const lenBytes = h & 15;
    const offBytes = h >> 4;
    return rec.readUIntLE(pairs + 1 + lenBytes, Math.min(offBytes, 6)) * cluster;
  })();

  const edit = (what: string, change: (image: string) => void, ls = false): DamageCase => ({ reader: r, technique: 'edit', name: `${r}/${what}`, ls, damage: async (image) => change(image) });
  const boots = (name: string, off: number, width: 1 | 2 | 4 | 8, value: number | bigint) => edit(`boot-${name}-${value}`, (image) => putLe(image, off, width, value));
  /** A field of record `n`, at `off` from the record or from attribute `type` (in $MFT and, with `mirror`, $MFTMirr). */
  const rec = (what: string, n: number, type: number | undefined, off: number, width: 1 | 2 | 4 | 8, value: number | bigint, mirror = false, ls = true) => {
    const a = type === undefined ? { at: 0 } : attr(n, type);
    return a ? [edit(`mft${n}${mirror ? '+mirror' : ''}-${what}`, (image) => {
      putLe(image, mft + n * recordSize + a.at + off, width, value);
      if (mirror && n < 4) putLe(image, mftMirr + n * recordSize + a.at + off, width, value);
    }, ls)] : [];
  };
  const BAAD = 0x44414142;
  const cases: DamageCase[] = [
    boots('bytes-per-sector', 0x0b, 2, 0),
    boots('bytes-per-sector', 0x0b, 2, 100),
    boots('sectors-per-cluster', 0x0d, 1, 0),
    boots('sectors-per-cluster', 0x0d, 1, 3),
    boots('total-sectors', 0x28, 8, 1n << 40n),
    boots('total-sectors', 0x28, 8, 0),
    boots('mft-lcn', 0x30, 8, 1n << 40n),
    boots('mft-lcn', 0x30, 8, 0),
    boots('mftmirr-lcn', 0x38, 8, 1n << 40n),
    boots('clusters-per-record', 0x40, 1, 0),
    boots('clusters-per-record', 0x40, 1, 0x7f),
    boots('clusters-per-record', 0x40, 1, 0xe0),
    boots('clusters-per-index', 0x44, 1, 0),
    boots('oem-id', 3, 4, 0x4641_5432),
    boots('signature', 510, 2, 0),
    ...rec('magic-BAAD', 0, undefined, 0, 4, BAAD),
    ...rec('magic-BAAD', 0, undefined, 0, 4, BAAD, true),
    ...rec('usa-count-0', 0, undefined, 6, 2, 0),
    ...rec('usa-offset-beyond', 0, undefined, 4, 2, 0xfff0),
    ...rec('first-attribute-beyond', 0, undefined, 0x14, 2, 0xfff0, true),
    ...rec('bytes-in-use-huge', 0, undefined, 0x18, 4, 0xffffff),
    ...rec('data-length-0', 0, ATTR.DATA, 4, 4, 0, true),
    ...rec('data-runlist-ff', 0, ATTR.DATA, attr(0, ATTR.DATA) ? record(0).readUInt16LE(attr(0, ATTR.DATA)!.at + 0x20) : 0, 1, 0xff, true),
    ...rec('data-size-huge', 0, ATTR.DATA, 0x30, 8, 1n << 50n, true),
    ...rec('data-highest-vcn-huge', 0, ATTR.DATA, 0x18, 8, 1n << 40n, true),
    ...rec('magic-BAAD', 3, undefined, 0, 4, BAAD, true),
    ...rec('volume-information-dirty', 3, ATTR.VOLUME_INFORMATION, 0x18 + 10, 2, 1, true),
    ...rec('magic-BAAD', 5, undefined, 0, 4, BAAD),
    ...rec('index-root-length-0', 5, ATTR.INDEX_ROOT, 4, 4, 0),
    ...rec('index-root-type-end', 5, ATTR.INDEX_ROOT, 0, 4, 0xffffffff),
    ...rec('index-allocation-runlist-ff', 5, ATTR.INDEX_ALLOCATION, attr(5, ATTR.INDEX_ALLOCATION) ? record(5).readUInt16LE(attr(5, ATTR.INDEX_ALLOCATION)!.at + 0x20) : 0, 1, 0xff),
    ...rec('magic-BAAD', 6, undefined, 0, 4, BAAD),
    ...rec('data-size-0', 6, ATTR.DATA, 0x30, 8, 0),
    ...rec('data-size-huge', 6, ATTR.DATA, 0x30, 8, 1n << 50n),
    ...rec('data-runlist-ff', 6, ATTR.DATA, attr(6, ATTR.DATA) ? record(6).readUInt16LE(attr(6, ATTR.DATA)!.at + 0x20) : 0, 1, 0xff),
    ...rec('first-attribute-0', 64, undefined, 0x14, 2, 0),
    ...(indx >= 0 ? [edit('indx-magic-0', (image) => writeAt(image, indx, Buffer.alloc(4)), true), edit('indx-entries-offset-beyond', (image) => putLe(image, indx + 0x18, 4, 0xfffff0), true)] : []),
    ...truncations(r, [
      ['after-boot-sector', 512],
      ['at-mftmirr', mftMirr],
      ['at-mft', mft],
      ['after-mft-record-0', mft + recordSize],
      ['before-root-record', mft + 5 * recordSize],
      ['before-bitmap-record', mft + 6 * recordSize],
      ['after-system-records', mft + 16 * recordSize],
      ['in-user-records', mft + 70 * recordSize],
      ['at-first-index-block', indx],
      ['at-bitmap-data', bitmapRun],
      ['before-backup-boot-sector', size - sector],
    ], size),
    ...bitflips(r, [
      ['boot-sector', 0, 512],
      ['mft-record-0', mft, recordSize],
      ['mft-record-3', mft + 3 * recordSize, recordSize],
      ['mft-record-5', mft + 5 * recordSize, recordSize],
      ['mft-record-6', mft + 6 * recordSize, recordSize],
      ['mft-user-records', mft + 64 * recordSize, 16 * recordSize],
      ['index-block', indx, indx >= 0 ? 4096 : 0],
    ], [1, 2]),
  ];
  return { reader: r, base, cases, noKernel: "this kernel has no ntfs3 (and ntfs-3g's statfs is not the kernel's)" };
};
