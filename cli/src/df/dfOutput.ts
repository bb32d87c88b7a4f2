/**
 * virt-df's output, byte for byte: the text table (36-character name column
 * that wraps), -h, -i, and CSV. Arithmetic as libguestfs's df/output.c does it,
 * on statvfs numbers: sizes in 1 KiB units = blocks * bsize / 1024.
 */
import type { StatFs } from '@guestlens/inspect';
import { csvLine } from '../output/csv.ts';
import { humanSize } from '../output/humanSize.ts';
import { csvPercent, textPercent, usePercent } from './percent.ts';

/** The statvfs numbers df prints. */
export type DfStat = Pick<StatFs, 'bsize' | 'blocks' | 'bfree' | 'bavail' | 'files' | 'ffree'>;

export interface DfOutputOptions {
  human: boolean;
  inodes: boolean;
  csv: boolean;
}

const NAME_WIDTH = 36;

export function dfHeader(o: DfOutputOptions): string {
  const cols = o.inodes ? ['Inodes', 'IUsed', 'IFree', 'IUse%'] : [o.human ? 'Size' : '1K-blocks', 'Used', 'Available', 'Use%'];
  if (o.csv) return `${csvLine(['VirtualMachine', 'Filesystem', ...cols])}\n`;
  return `${'Filesystem'.padEnd(NAME_WIDTH)}${cols[0].padStart(10)} ${cols[1].padStart(10)} ${cols[2].padStart(10)} ${cols[3].padStart(5)}\n`;
}

function kib(blocks: number, bsize: number): bigint {
  return (BigInt(blocks) * BigInt(bsize)) / 1024n;
}

/** One row: `name` is the guest name, `device` the canonical device (/dev/sda1, /dev/VG/LV). */
export function dfRow(name: string, device: string, st: DfStat, o: DfOutputOptions): string {
  let cols: string[];
  let percent: number;
  if (!o.inodes) {
    const size = kib(st.blocks, st.bsize);
    const used = kib(st.blocks - st.bfree, st.bsize);
    const avail = kib(st.bavail, st.bsize);
    cols = o.human ? [size, used, avail].map((k) => humanSize(k * 1024n)) : [size, used, avail].map(String);
    percent = usePercent(st.blocks, st.bfree);
  } else {
    // virt-df prints inode counts as plain numbers even with -h.
    cols = [st.files, st.files - st.ffree, st.ffree].map(String);
    percent = usePercent(st.files, st.ffree);
  }
  if (o.csv) return `${csvLine([name, device, ...cols])},${csvPercent(percent)}\n`;
  const label = `${name}:${device}`;
  // printf's %-36s counts bytes, not characters: a non-ASCII name pads less.
  const bytes = Buffer.byteLength(label);
  const lead = bytes <= NAME_WIDTH ? label + ' '.repeat(NAME_WIDTH - bytes) : `${label}\n${' '.repeat(NAME_WIDTH)}`;
  return `${lead}${cols[0].padStart(10)} ${cols[1].padStart(10)} ${cols[2].padStart(10)} ${textPercent(percent).padStart(5)}\n`;
}

export { guestDisplayName } from '../guest/guestJobs.ts';
