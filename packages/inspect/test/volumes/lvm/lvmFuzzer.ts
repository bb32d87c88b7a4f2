/**
 * The LVM metadata fuzzer shared by fuzz.test.ts and `pnpm -s fuzz --target lvm`:
 * a VG made with the lvm2 tools as the corpus, token-aware mutations of its
 * text, and the two harnesses (text through parser, VG reader, mapper and
 * LV reads; disks through the whole guest).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openGuest } from '../../../src/index.ts';
import { ConfigTextError, parseConfigText } from '../../../src/volumes/lvm/configText.ts';
import { LvmError } from '../../../src/volumes/lvm/errors.ts';
import { LIMITS, MDA_HEADER, lvmCrc } from '../../../src/volumes/lvm/layout.ts';
import { readMetadataText } from '../../../src/volumes/lvm/metadataArea.ts';
import { readPvLabel } from '../../../src/volumes/lvm/label.ts';
import { SegmentMapper, type AttachedPv } from '../../../src/volumes/lvm/segmentMapping.ts';
import { readVolumeGroup } from '../../../src/volumes/lvm/vgMetadata.ts';
import { LvmFixture } from '../../../../../test/support/lvm.ts';
import { raid1Text } from '../../../../../test/support/lvmGuest.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../../../test/support/memorySource.ts';
import type { Prng } from '../../../../../test/support/prng.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';

const MiB = 1024 * 1024;

export interface FuzzBase {
  /** The PV disks, by file name. */
  disks: Map<string, Buffer>;
  /** The committed text (as LVM wrote it). */
  text: string;
}

/** A VG with linear, striped, discontiguous and raid1 LVs over two PVs, made with the lvm2 tools. */
export async function buildFuzzBase(): Promise<FuzzBase> {
  const dir = scratchDir('lvm-fuzz');
  const files = [join(dir, 'p0.img'), join(dir, 'p1.img')];
  for (const f of files) await sh('truncate', ['-s', String(24 * MiB), f]);
  const f = await LvmFixture.create('fuzzvg', files.map((file) => ({ file, offset: 0, size: 24 * MiB })));
  try {
    await f.lvcreate(['-n', 'lin', '-L', '4m', 'fuzzvg', f.devices[0]]);
    await f.lvcreate(['-n', 'str', '-i', '2', '-I', '16k', '-L', '8m', 'fuzzvg']);
    await f.lvm('lvextend', ['-L', '+4m', 'fuzzvg/lin', f.devices[1]]);
    await f.lvcreate(['-n', 'r1.rmeta.0', '-l', '1', 'fuzzvg', f.devices[0]]);
    await f.lvcreate(['-n', 'r1.rimage.0', '-L', '4m', 'fuzzvg', f.devices[0]]);
    await f.lvcreate(['-n', 'r1.rmeta.1', '-l', '1', 'fuzzvg', f.devices[1]]);
    await f.lvcreate(['-n', 'r1.rimage.1', '-L', '4m', 'fuzzvg', f.devices[1]]);
    await f.restore(join(dir, 'vg.txt'), (t) => raid1Text(t, 'r1', 2, 1));
  } finally {
    await f.detach();
  }
  const disks = new Map([
    ['p0.img', await readFile(files[0])],
    ['p1.img', await readFile(files[1])],
  ]);
  const s = new MemorySource(disks.get('p0.img')!);
  const text = (await readMetadataText(s, (await readPvLabel(s))!.metadataAreas[0]))!.text.toString('latin1');
  return { disks, text };
}

const NUMBERS = ['0', '-1', '1', '4294967295', '4294967296', '9007199254740993', '99999999999999999999', '0777', '18446744073709551615', '-9223372036854775808', '1.5'];
const TYPES = ['striped', 'linear', 'mirror', 'raid1', 'raid0', 'raid0_meta', 'raid5', 'thin', 'thin-pool', 'snapshot', 'zero', 'error', 'cache', 'vdo', 'striped+RESHAPE', ''];

/** One mutation of VG text: byte-level or token-level, chosen by the generator. */
export function mutateText(p: Prng, text: string): string {
  let t = text;
  const rounds = 1 + p.below(3);
  for (let r = 0; r < rounds; r++) {
    const at = p.below(Math.max(1, t.length));
    switch (p.below(10)) {
      case 0: // flip a byte
        t = t.slice(0, at) + String.fromCharCode(p.below(256)) + t.slice(at + 1);
        break;
      case 1: {
        // cut a range
        const len = p.below(200);
        t = t.slice(0, at) + t.slice(at + len);
        break;
      }
      case 2: {
        // repeat a range (duplicate keys, sections)
        const len = p.below(400);
        t = t.slice(0, at + len) + t.slice(at, at + len) + t.slice(at + len);
        break;
      }
      case 3: {
        // a number becomes a hostile one
        const nums = [...t.matchAll(/-?\d+/g)];
        if (nums.length === 0) break;
        const m = nums[p.below(nums.length)];
        t = t.slice(0, m.index) + NUMBERS[p.below(NUMBERS.length)] + t.slice(m.index! + m[0].length);
        break;
      }
      case 4: {
        // a quoted name becomes another name of the text (an LV naming itself or its parent: cycles)
        const strs = [...t.matchAll(/"([A-Za-z0-9_.+-]*)"/g)];
        if (strs.length < 2) break;
        const a = strs[p.below(strs.length)];
        const b = strs[p.below(strs.length)];
        t = t.slice(0, a.index) + `"${b[1]}"` + t.slice(a.index! + a[0].length);
        break;
      }
      case 5: {
        // a segment type changes
        const types = [...t.matchAll(/type = "[^"]*"/g)];
        if (types.length === 0) break;
        const m = types[p.below(types.length)];
        t = t.slice(0, m.index) + `type = "${TYPES[p.below(TYPES.length)]}"` + t.slice(m.index! + m[0].length);
        break;
      }
      case 6: {
        // deep nesting
        const depth = p.below(3) === 0 ? LIMITS.textDepth + 5 : p.below(LIMITS.textDepth);
        t = t.slice(0, at) + 'x{'.repeat(depth) + '}'.repeat(depth) + t.slice(at);
        break;
      }
      case 7: // a long token
        t = t.slice(0, at) + `"${'y'.repeat(p.below(3) === 0 ? LIMITS.tokenLength + 10 : 1000)}"` + t.slice(at);
        break;
      case 8: {
        // an area moves to another PV extent, past the end, or onto an LV
        const areas = [...t.matchAll(/"(pv\d)", (\d+)/g)];
        if (areas.length === 0) break;
        const m = areas[p.below(areas.length)];
        const to = [`"pv${p.below(3)}", ${p.below(8)}`, `"${m[1]}", ${p.below(10000)}`, `"lin", 0`, `"r1", ${p.below(2)}`, `"str", 0`][p.below(5)];
        t = t.slice(0, m.index) + to + t.slice(m.index! + m[0].length);
        break;
      }
      default: {
        // swap two lines
        const lines = t.split('\n');
        const i = p.below(lines.length);
        const j = p.below(lines.length);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        t = lines.join('\n');
      }
    }
  }
  return t;
}

/** Our errors, and only ours: anything else (a TypeError, a stack overflow) is a bug. */
export function isTyped(err: unknown): boolean {
  return err instanceof ConfigTextError || err instanceof LvmError || err instanceof ReadBudgetExceeded;
}

/** Parse, read, map and read from every LV of one text; returns how far it got. */
export interface TextOutcome {
  /** The text was refused as a whole. */
  refused: number;
  /** LVs mapped and read, and LVs refused with a typed error. */
  mapped: number;
  unavailable: number;
}

/** Parse, read, map and read from every LV of one text, counting what happened into `o`. */
export async function runTextCase(base: FuzzBase, text: string, o: TextOutcome = { refused: 0, mapped: 0, unavailable: 0 }): Promise<TextOutcome> {
  let vg;
  try {
    vg = readVolumeGroup(parseConfigText(text), 'fuzz');
  } catch (err) {
    if (!isTyped(err)) throw err;
    o.refused++;
    return o;
  }
  const sources = [...base.disks.values()].map((b, i) => new MemorySource(b, `p${i}.img`, b.length, 512, 400));
  const attached = new Map<string, AttachedPv<number>>();
  for (const meta of vg.pvs.values()) {
    const i = Number(/^pv(\d)$/.exec(meta.name)?.[1] ?? -1);
    if (sources[i]) attached.set(meta.name, { meta, source: sources[i], device: i });
  }
  const mapper = new SegmentMapper(vg, attached, (lv) => `fuzz ${lv}`);
  for (const lv of vg.lvs.keys()) {
    try {
      const { source } = mapper.map(lv);
      const len = Math.min(source.size, 3 * 65536 + 17);
      if (len > 0) {
        await source.read(0, len);
        await source.read(source.size - Math.min(source.size, 4097), Math.min(source.size, 4097));
        await source.extent(0, source.size);
      }
      o.mapped++;
    } catch (err) {
      if (!isTyped(err)) throw err;
      o.unavailable++;
    }
  }
  return o;
}

/** Rewrite PV `disk`'s committed text with valid CRCs (so the mutation reaches the parser through the assembler). */
export function writeCopy(disk: Buffer, text: string): void {
  const header = 4096;
  const slot = header + MDA_HEADER.raw_locns;
  const start = header + Number(disk.readBigUInt64LE(slot));
  const room = Number(disk.readBigUInt64LE(header + MDA_HEADER.size)) - (start - header);
  const bytes = Buffer.from(`${text}\0`, 'latin1').subarray(0, room);
  bytes.copy(disk, start);
  disk.writeBigUInt64LE(BigInt(bytes.length), slot + 8);
  disk.writeUInt32LE(lvmCrc(bytes), slot + 16);
  disk.writeUInt32LE(lvmCrc(disk.subarray(header + 4, header + 512)), header);
}


/**
 * One mutated pair of disks (the label sector, the metadata area header,
 * the text with its CRC left stale, or the text rewritten with good CRCs)
 * through the whole guest: it must open, every problem must name a device
 * in printable words, and reading an LV fails only with a typed error.
 * Returns how many LVs were listed.
 */
export async function runDiskCase(base: FuzzBase, p: Prng): Promise<number> {
  const disks = new Map([...base.disks].map(([k, v]) => [k, Buffer.from(v.subarray(0, 64 * 1024))]));
  const victim = disks.get(p.below(2) === 0 ? 'p0.img' : 'p1.img')!;
  const mode = p.below(4);
  if (mode === 0) victim[512 + p.below(512)] ^= 1 << p.below(8);
  else if (mode === 1) victim[4096 + p.below(512)] = p.below(256);
  else if (mode === 2) victim[4096 + 512 + p.below(4000)] ^= 0xff;
  else writeCopy(victim, mutateText(p, base.text));
  const sources = new Map([...disks].map(([k, v]) => [k, new MemorySource(v, k, 24 * MiB, 512, 2000)]));
  const g = await openGuest(['p0.img', 'p1.img'], {
    overlay: false,
    openImage: async (spec) => ({ source: sources.get(spec.path)!, format: 'raw', close: async () => {} }),
  });
  let listed = 0;
  try {
    for (const f of (await g.filesystems()).filter((d) => d.kind === 'logical-volume')) {
      listed++;
      await f.source.read(0, Math.min(f.size, 8192)).catch((err: unknown) => {
        if (!isTyped(err)) throw err;
      });
    }
    for (const w of g.warnings) {
      if (!w.device.startsWith('/dev/') || w.message.length === 0 || /[\x00-\x1f\x7f-\xff]/.test(w.message)) throw new Error(`a problem badly said: ${JSON.stringify(w)}`);
    }
  } finally {
    await g.close();
  }
  return listed;
}
