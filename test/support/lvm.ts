/**
 * LVM2 fixtures made with the real lvm2 tools. This kernel has no
 * device-mapper, so the tools run with activation off: pvcreate, vgcreate
 * and `lvcreate -an -Zn` write real metadata onto loop devices over the
 * fixture files, and layouts LVM can only make with device-mapper (raid1,
 * thin pools, snapshots) are written as VG text and put in place with
 * vgcfgrestore, which checks them as LVM checks any metadata.
 *
 * Nothing is ever activated, so LVs are filled by hand: `layout()` reads
 * where every extent of every LV is from the tools' own reports (pvs
 * pe_start, lvs --segments seg_pe_ranges/stripes/stripe_size), and
 * `scatter`/`gather` write and read an LV's bytes at exactly those places.
 * The tools never see anything but our loop devices (`--devices`), keep no
 * backup or archive in /etc/lvm, and the loop devices are detached however
 * the test ends.
 */
import { execa } from 'execa';
import { open } from 'node:fs/promises';
import { sh } from './run.ts';

/** Where a PV lives: a byte range of a fixture file (a partition, or the whole disk). */
export interface PvSpec {
  file: string;
  offset: number;
  size: number;
  /** pvcreate options for this PV only (--metadatacopies 0, --labelsector 2, ...). */
  pvcreate?: string[];
}

export interface LvSegment {
  segtype: string;
  startExtent: number;
  extents: number;
  stripes: number;
  /** Bytes (0 for linear). */
  stripeSize: number;
  /** One per area: a PV's loop device (or a sub-LV's name) and its first and last extent. */
  ranges: { device: string; first: number; last: number }[];
}

export interface VgLayout {
  vg: string;
  extentBytes: number;
  /** By loop device: the fixture file and the byte offset of the PV's first extent in it. */
  pvs: Map<string, { file: string; peStartInFile: number; uuid: string }>;
  /** Every LV (hidden ones by their plain name), its segments in LV order. */
  lvs: Map<string, LvSegment[]>;
}

const CONFIG = 'global { activation = 0 } backup { backup = 0 archive = 0 }';
const ENV = { LVM_SUPPRESS_FD_WARNINGS: '1' };

export class LvmFixture {
  private constructor(
    readonly vg: string,
    readonly specs: PvSpec[],
    /** The loop device of each PV, in spec order. */
    readonly devices: string[],
  ) {}

  /** Attach loop devices over the PVs, pvcreate them and make one VG of them. */
  static async create(vg: string, specs: PvSpec[], options: { extentSize?: string; pvcreate?: string[] } = {}): Promise<LvmFixture> {
    const devices: string[] = [];
    try {
      for (const s of specs) devices.push((await sh('losetup', ['--find', '--show', '--offset', String(s.offset), '--sizelimit', String(s.size), s.file])).trim());
      const f = new LvmFixture(vg, specs, devices);
      for (const [i, s] of specs.entries()) await f.lvm('pvcreate', ['-y', '-ff', ...(options.pvcreate ?? []), ...(s.pvcreate ?? []), devices[i]]);
      await f.lvm('vgcreate', ['-s', options.extentSize ?? '4m', vg, ...devices]);
      return f;
    } catch (err) {
      for (const d of devices) await execa('losetup', ['-d', d], { reject: false });
      throw err;
    }
  }

  /** Run an lvm2 command on our devices only, activation off. */
  lvm(command: string, args: string[]): Promise<string> {
    return sh(command, ['--config', CONFIG, '--devices', this.devices.join(','), ...args], { env: ENV });
  }

  /** lvcreate without activation or zeroing (there is no device-mapper to do either). */
  lvcreate(args: string[]): Promise<string> {
    return this.lvm('lvcreate', ['-an', '-Zn', '-Wn', '-y', ...args]);
  }

  /** The VG's metadata text as vgcfgbackup writes it. */
  async backup(file: string): Promise<string> {
    await this.lvm('vgcfgbackup', ['-f', file, this.vg]);
    const { readFile } = await import('node:fs/promises');
    return readFile(file, 'utf8');
  }

  /** Edit the VG's metadata text and write it back with vgcfgrestore (LVM validates it). */
  async restore(file: string, edit: (text: string) => string): Promise<void> {
    const text = edit(await this.backup(file));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, text);
    await this.lvm('vgcfgrestore', ['-f', file, this.vg]);
  }

  /** Where every LV's extents are, from pvs/vgs/lvs reports. */
  async layout(): Promise<VgLayout> {
    type Report<T> = { report: Record<string, T[]>[] };
    const rows = async <T>(command: string, args: string[], key: string): Promise<T[]> =>
      ((JSON.parse(await this.lvm(command, ['--reportformat', 'json', '--units', 'b', '--nosuffix', ...args])) as Report<T>).report[0][key] ?? []);
    const vgs = await rows<{ vg_extent_size: string }>('vgs', ['-o', 'vg_extent_size', this.vg], 'vg');
    const pvRows = await rows<{ pv_name: string; pe_start: string; pv_uuid: string }>('pvs', ['-o', 'pv_name,pe_start,pv_uuid', ...this.devices], 'pv');
    const pvs = new Map<string, { file: string; peStartInFile: number; uuid: string }>();
    for (const r of pvRows) {
      const i = this.devices.indexOf(r.pv_name);
      pvs.set(r.pv_name, { file: this.specs[i].file, peStartInFile: this.specs[i].offset + Number(r.pe_start), uuid: r.pv_uuid });
    }
    const segRows = await rows<{ lv_name: string; segtype: string; seg_start_pe: string; seg_size_pe: string; seg_pe_ranges: string; stripes: string; stripe_size: string }>(
      'lvs',
      ['-a', '--segments', '-o', 'lv_name,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges,stripes,stripe_size', this.vg],
      'seg',
    );
    const lvs = new Map<string, LvSegment[]>();
    for (const r of segRows) {
      const name = r.lv_name.replace(/^\[(.*)\]$/, '$1');
      const ranges = r.seg_pe_ranges
        .split(/\s+/)
        .filter(Boolean)
        .map((s) => {
          const m = /^(.*):(\d+)-(\d+)$/.exec(s);
          if (!m) throw new Error(`lvs: cannot read the PE range ${s}`);
          return { device: m[1].replace(/^\[(.*)\]$/, '$1'), first: Number(m[2]), last: Number(m[3]) };
        });
      const seg: LvSegment = {
        segtype: r.segtype,
        startExtent: Number(r.seg_start_pe),
        extents: Number(r.seg_size_pe),
        stripes: Number(r.stripes),
        stripeSize: Number(r.stripe_size),
        ranges,
      };
      lvs.set(name, [...(lvs.get(name) ?? []), seg].sort((a, b) => a.startExtent - b.startExtent));
    }
    return { vg: this.vg, extentBytes: Number(vgs[0].vg_extent_size), pvs, lvs };
  }

  /** Detach the loop devices (the fixture files keep what LVM wrote). */
  async detach(): Promise<void> {
    for (const d of this.devices.splice(0)) await execa('losetup', ['-d', d], { reject: false });
  }
}

/** One run of an LV's bytes in a fixture file. */
export interface Piece {
  file: string;
  fileOffset: number;
  lvOffset: number;
  length: number;
}

/**
 * Every run of the LV's bytes, in LV order, for one copy of a mirrored LV
 * (`leg` picks the raid1/mirror image), from the layout the tools reported.
 */
export function lvPieces(layout: VgLayout, lv: string, leg = 0, base = 0): Piece[] {
  const segments = layout.lvs.get(lv);
  if (!segments) throw new Error(`no LV ${lv} in ${layout.vg}`);
  const out: Piece[] = [];
  for (const seg of segments) {
    const segStart = base + seg.startExtent * layout.extentBytes;
    const segBytes = seg.extents * layout.extentBytes;
    if (seg.segtype === 'raid1' || seg.segtype === 'mirror') {
      const image = seg.ranges[leg];
      out.push(...subPieces(layout, image.device, image.first, segStart, segBytes));
      continue;
    }
    if (seg.segtype !== 'linear' && seg.segtype !== 'striped') throw new Error(`lvPieces: ${seg.segtype} segments are not laid out by this helper`);
    const n = seg.ranges.length;
    const chunk = n === 1 ? segBytes : seg.stripeSize;
    for (let off = 0; off < segBytes; off += chunk) {
      const c = off / chunk;
      const area = seg.ranges[c % n];
      const row = Math.floor(c / n);
      const areaOffset = area.first * layout.extentBytes + row * chunk;
      const pv = layout.pvs.get(area.device);
      if (pv) out.push({ file: pv.file, fileOffset: pv.peStartInFile + areaOffset, lvOffset: segStart + off, length: chunk });
      else out.push(...subPieces(layout, area.device, area.first, segStart + off, chunk, row * chunk));
    }
  }
  return out;
}

/** The pieces of `length` bytes of sub-LV `name` from its extent `first` (+ `within` bytes), placed at `lvOffset`. */
function subPieces(layout: VgLayout, name: string, first: number, lvOffset: number, length: number, within = 0): Piece[] {
  const start = first * layout.extentBytes + within;
  return lvPieces(layout, name)
    .filter((p) => p.lvOffset + p.length > start && p.lvOffset < start + length)
    .map((p) => {
      const from = Math.max(p.lvOffset, start);
      const to = Math.min(p.lvOffset + p.length, start + length);
      return { file: p.file, fileOffset: p.fileOffset + from - p.lvOffset, lvOffset: lvOffset + from - start, length: to - from };
    });
}

/** How many legs an LV's first segment has (raid1/mirror), else 1. */
export function legsOf(layout: VgLayout, lv: string): number {
  const seg = layout.lvs.get(lv)?.[0];
  return seg && (seg.segtype === 'raid1' || seg.segtype === 'mirror') ? seg.ranges.length : 1;
}

/** Write an image (as long as the LV or shorter) into every copy of the LV. */
export async function scatter(layout: VgLayout, lv: string, image: string): Promise<void> {
  const src = await open(image, 'r');
  try {
    for (let leg = 0; leg < legsOf(layout, lv); leg++) {
      for (const p of lvPieces(layout, lv, leg)) {
        const buf = Buffer.alloc(p.length);
        const { bytesRead } = await src.read(buf, 0, p.length, p.lvOffset);
        if (bytesRead === 0) continue;
        const dst = await open(p.file, 'r+');
        try {
          await dst.write(buf, 0, bytesRead, p.fileOffset);
        } finally {
          await dst.close();
        }
      }
    }
  } finally {
    await src.close();
  }
}

/** Read an LV's bytes (leg 0 of a mirrored one) from the fixture files into `out`. */
export async function gather(layout: VgLayout, lv: string, out: string, leg = 0): Promise<void> {
  const dst = await open(out, 'w');
  try {
    for (const p of lvPieces(layout, lv, leg)) {
      const src = await open(p.file, 'r');
      try {
        const buf = Buffer.alloc(p.length);
        await src.read(buf, 0, p.length, p.fileOffset);
        await dst.write(buf, 0, p.length, p.lvOffset);
      } finally {
        await src.close();
      }
    }
  } finally {
    await dst.close();
  }
}

/** The size in bytes of an LV by the layout. */
export function lvBytes(layout: VgLayout, lv: string): number {
  return (layout.lvs.get(lv) ?? []).reduce((n, s) => n + s.extents * layout.extentBytes, 0);
}

/** Whether the lvm2 tools and loop devices are usable here, else why not. */
export async function lvmUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the lvm2 tools need loop devices, which need root';
  const r = await execa('lvm', ['version'], { reject: false, env: ENV });
  if (r.exitCode !== 0 && !/LVM version/.test(r.stdout)) return 'lvm2 is not installed (Debian package lvm2)';
  return undefined;
}
