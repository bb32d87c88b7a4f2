/**
 * The read paths the targets drive, as a user's command does: an image
 * format read through its driver (the first megabytes, random places, the
 * extent map, a refresh), and a disk read as a guest (partition tables,
 * LVM, the probe, each filesystem's statfs, a bounded walk from the root
 * with stat, readlink and the first bytes of every file). Only typed
 * errors are tolerated, each step on its own, so one bad inode does not
 * hide the rest of the walk from the fuzzer.
 */
import { formatDriver, type ImageLayer } from '@guestlens/qcow2-js';
import { memoryContext } from '../../../packages/qcow2-js/test/support/formatFuzzer.ts';
import { openGuest } from '@guestlens/inspect';
import type { FuzzInput } from '../engine/input.ts';
import { typedOnly } from '../target.ts';

const MiB = 1 << 20;
/** Reads of one source per case: a reader that loops fails on this instead of hanging. */
export const READ_BUDGET = 50_000;


/**
 * Open `input` as `format` and read it the way `guestlens image` and a copy do.
 * `neighbours` are the files it may name (VMDK extents, a parent or backing
 * file), by base name: served as the seeds made them, unmutated, so the input
 * is still one file and a crash file replays alone (with its target's seeds).
 */
export async function readImage(format: string, input: FuzzInput, neighbours = new Map<string, Buffer>()): Promise<void> {
  const name = `fuzz.${format}`;
  const driver = formatDriver(format);
  if (!driver?.open) throw new Error(`no driver for ${format}`);
  // Anything else the input names is refused as a missing file (a typed error).
  const context = memoryContext({ name: 'fuzz', format, top: name, files: neighbours, interesting: [] }, name, []);
  const image = await typedOnly(() => driver.open!(input.source(name, READ_BUDGET), context));
  if (!image) return;
  try {
    const readAll = async (img: ImageLayer) => {
      const end = Math.min(img.size, 2 * MiB);
      for (let off = 0; off < end; off += 256 * 1024) await img.read(off, Math.min(256 * 1024, end - off));
      // The last bytes and a place in the middle of a (claimed) huge disk.
      if (img.size > 0) await img.read(Math.max(0, img.size - 4096), Math.min(4096, img.size));
      if (img.size > 8192) await img.read(Math.floor(img.size / 2 / 512) * 512, 8192);
      for (let off = 0, n = 0; off < end && n < 10_000; n++) off += (await img.extent(off, end - off)).length;
    };
    await typedOnly(() => readAll(image));
    await typedOnly(async () => {
      await image.refresh();
      await readAll(image);
    });
  } finally {
    await image.close().catch(() => undefined);
  }
}

const MAX_NODES = 400;
const MAX_DEPTH = 8;

/** Read `input` as a raw disk of a guest: every device, every filesystem, a walk of each. */
export async function walkGuest(input: FuzzInput, name = 'fuzz.img'): Promise<void> {
  const source = input.source(name, READ_BUDGET);
  const guest = await typedOnly(() => openGuest([name], { overlay: false, openImage: async () => ({ source, format: 'raw', close: async () => {} }) }));
  if (!guest) return;
  try {
    for (const info of (await typedOnly(() => guest.filesystems())) ?? []) {
      if (info.consumedBy) continue;
      await typedOnly(() => info.source.read(0, Math.min(info.size, 4096)));
      const fs = await typedOnly(() => info.open());
      if (!fs) continue;
      await typedOnly(() => fs.statfs());
      let nodes = 0;
      const visit = async (path: string, depth: number): Promise<void> => {
        const entries = (await typedOnly(() => fs.readdir(path))) ?? [];
        for (const e of entries) {
          if (++nodes > MAX_NODES) return;
          if (e.name === '.' || e.name === '..') continue;
          const child = path === '/' ? `/${e.name}` : `${path}/${e.name}`;
          const st = await typedOnly(() => fs.lstat(child));
          if (!st) continue;
          if (st.type === 'symlink') await typedOnly(() => fs.readlink(child));
          else if (st.type === 'file') {
            await typedOnly(() => fs.readRange(child, 0, 65536));
            if (st.size > 65536) await typedOnly(() => fs.readRange(child, Math.max(0, st.size - 4096), 4096));
          } else if (st.type === 'directory' && depth < MAX_DEPTH) await visit(child, depth + 1);
          if (nodes % 16 === 0) await typedOnly(() => fs.listxattr(child));
        }
      };
      await visit('/', 0);
    }
  } finally {
    await guest.close().catch(() => undefined);
  }
}

/** Hot ranges from a list of structures. */
export function hotOf(regions: readonly { offset: number; length: number }[]): [number, number][] {
  return regions.map((r) => [r.offset, r.length]);
}
