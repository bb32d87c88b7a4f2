/**
 * A two-disk guest with its root on LVM, made with the real tools: the
 * first disk is GPT with an ext4 partition and an LVM partition, the second
 * is a whole-disk PV. One VG spans both, with
 *
 *   linear     ext4, on the first disk only
 *   discontig  ext4 in two segments (extended after another LV took the next extents)
 *   striped    ext4 striped over both PVs (64 KiB stripes)
 *   mirror     ext4 on raid1: one image on each PV (made as text, vgcfgrestore)
 *   swap       swap, on the second disk
 *
 * Each filesystem is made by mkfs in a file of the LV's size and written at
 * the LV's extents as lvs reports them (support/lvm.ts); `images` keeps
 * those files, so a test can compare an LV's bytes with what was written.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk, writeTree, type BuiltDisk } from './guestDisk.ts';
import { LvmFixture, lvBytes, scatter, type VgLayout } from './lvm.ts';
import { sh } from './run.ts';
import { scratchDir } from './scratch.ts';

const MiB = 1024 * 1024;

export interface LvmGuest {
  first: BuiltDisk;
  /** The raw second disk (a whole-disk PV). */
  second: string;
  vg: string;
  layout: VgLayout;
  /** LV name -> the filesystem image written into it. */
  images: Map<string, string>;
  /** LV name -> its fstype as mkfs made it ('swap' for the swap LV). */
  fstypes: Map<string, string>;
}

export interface LvmGuestOptions {
  /** VG name (default "guestvg"). */
  vg?: string;
  /** Add the raid1 LV (default true). */
  raid1?: boolean;
  /** Files put in every filesystem. */
  files?: Record<string, string | Buffer>;
}

const defaultFiles = {
  'etc/hostname': 'lvmguest\n',
  'var/log/syslog': 'a line of log\n'.repeat(3000),
  'srv/blob': Buffer.alloc(900 * 1024, 0x5a),
  'srv/link': Buffer.from('x'),
};

export async function buildLvmGuest(options: LvmGuestOptions = {}): Promise<LvmGuest> {
  const vg = options.vg ?? 'guestvg';
  const files = options.files ?? defaultFiles;
  const dir = scratchDir('lvm-guest');
  const first = await buildDisk('first', 'gpt', [
    { sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'boot'], files: { 'grub/grub.cfg': 'set default=0\n' } } },
    { sizeMiB: 100, type: 'V', content: { empty: true } },
  ]);
  const second = join(dir, 'second.raw');
  await sh('truncate', ['-s', String(100 * MiB), second]);
  const pvPart = first.partitions[1];
  const lvm = await LvmFixture.create(vg, [
    { file: first.raw, offset: pvPart.offset, size: pvPart.size },
    { file: second, offset: 0, size: 100 * MiB },
  ]);
  let layout: VgLayout;
  try {
    const [pv0, pv1] = lvm.devices;
    await lvm.lvcreate(['-n', 'linear', '-L', '24m', vg, pv0]);
    await lvm.lvcreate(['-n', 'discontig', '-L', '8m', vg, pv0]);
    await lvm.lvcreate(['-n', 'striped', '-i', '2', '-I', '64k', '-L', '32m', vg, pv0, pv1]);
    await lvm.lvm('lvextend', ['-L', '+8m', `${vg}/discontig`, pv0]);
    await lvm.lvcreate(['-n', 'swap', '-L', '8m', vg, pv1]);
    if (options.raid1 ?? true) {
      // The kernel here has no device-mapper, so lvcreate cannot make raid1: allocate its pieces as plain LVs
      // (_rmeta_/_rimage_ names are reserved to LVM) and make them a raid1 in the text.
      await lvm.lvcreate(['-n', 'mirror.rmeta.0', '-l', '1', vg, pv0]);
      await lvm.lvcreate(['-n', 'mirror.rimage.0', '-L', '16m', vg, pv0]);
      await lvm.lvcreate(['-n', 'mirror.rmeta.1', '-l', '1', vg, pv1]);
      await lvm.lvcreate(['-n', 'mirror.rimage.1', '-L', '16m', vg, pv1]);
      await lvm.restore(join(dir, 'vg.txt'), (text) => raid1Text(text, 'mirror', 2, 4));
    }
    layout = await lvm.layout();
  } finally {
    await lvm.detach();
  }
  const images = new Map<string, string>();
  const fstypes = new Map<string, string>();
  for (const lv of layout.lvs.keys()) {
    if (lv.includes('_rimage_') || lv.includes('_rmeta_')) continue;
    const image = join(dir, `${lv}.img`);
    await sh('truncate', ['-s', String(lvBytes(layout, lv)), image]);
    if (lv === 'swap') {
      await sh('mkswap', ['-q', '-L', 'lvswap', image]);
      fstypes.set(lv, 'swap');
    } else {
      const tree = join(dir, `tree-${lv}`);
      mkdirSync(tree, { recursive: true });
      writeTree(tree, { ...files, [`srv/${lv}.txt`]: `this is ${lv}\n` });
      await sh('mkfs.ext4', ['-q', '-F', '-L', lv, '-d', tree, image]);
      fstypes.set(lv, 'ext4');
    }
    await scatter(layout, lv, image);
    images.set(lv, image);
  }
  return { first, second, vg, layout, images, fstypes };
}

/**
 * Make LV `name` a raid1 of the plain LVs NAME.rmeta.I / NAME.rimage.I, renamed
 * NAME_rmeta_I / NAME_rimage_I and hidden, as lvcreate --type raid1 writes it.
 */
export function raid1Text(text: string, name: string, legs: number, extents: number): string {
  let out = text;
  for (let i = 0; i < legs; i++) {
    for (const part of ['rmeta', 'rimage']) {
      const lv = `${name}_${part}_${i}`;
      const before = `\t\t${name}.${part}.${i} {`;
      if (!out.includes(before)) throw new Error(`raid1Text: no LV ${name}.${part}.${i} in the backup`);
      out = out.replace(before, `\t\t${lv} {`);
      const at = out.indexOf(`\t\t${lv} {`);
      const statusAt = out.indexOf('status = ["READ", "WRITE", "VISIBLE"]', at);
      out = `${out.slice(0, statusAt)}status = ["READ", "WRITE"]${out.slice(statusAt + 'status = ["READ", "WRITE", "VISIBLE"]'.length)}`;
    }
  }
  const raids = Array.from({ length: legs }, (_, i) => `"${name}_rmeta_${i}", "${name}_rimage_${i}"`).join(',\n\t\t\t\t\t');
  const lv =
    `\t\t${name} {\n\t\t\tid = "${fakeId(name)}"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\n` +
    `\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = ${extents}\n\n\t\t\t\ttype = "raid1"\n\t\t\t\tdevice_count = ${legs}\n\t\t\t\tregion_size = 1024\n\n` +
    `\t\t\t\traids = [\n\t\t\t\t\t${raids}\n\t\t\t\t]\n\t\t\t}\n\t\t}\n\n`;
  return insertLv(out, lv);
}

/** Put an LV section first in logical_volumes. */
export function insertLv(text: string, lvSection: string): string {
  const marker = '\tlogical_volumes {\n';
  const at = text.indexOf(marker);
  if (at < 0) throw new Error('insertLv: no logical_volumes section');
  return text.slice(0, at + marker.length) + '\n' + lvSection + text.slice(at + marker.length);
}

/** A well-formed LVM id derived from a name (fixtures only). */
export function fakeId(name: string): string {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let h = 2166136261;
  let id = '';
  for (let i = 0; i < 32; i++) {
    h = Math.imul(h ^ (name.charCodeAt(i % name.length) + i), 16777619) >>> 0;
    id += chars[h % chars.length];
  }
  return [6, 4, 4, 4, 4, 4, 6].reduce<{ parts: string[]; at: number }>((acc, n) => ({ parts: [...acc.parts, id.slice(acc.at, acc.at + n)], at: acc.at + n }), { parts: [], at: 0 }).parts.join('-');
}

