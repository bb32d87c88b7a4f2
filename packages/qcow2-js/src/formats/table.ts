/**
 * Every image format guestlens recognises, in probe order: one line per
 * format (go-qcow2reader's `Types`). A format with a reader opens to a
 * readable layer; one without still opens, for `image info`, and refuses
 * reads by name. Raw is last: it is what a file is when nothing else
 * matches, and what the user's `--format raw` always makes it.
 */
import type { ImageFormatDriver } from './layer.ts';
import { qcow2Format } from './qcow2/index.ts';
import { rawFormat } from './raw/rawImage.ts';
import { bochs, cloop, dmg, luks, parallels, qcowV1, qed } from './unreadable/magics.ts';
import { vmdkFormat } from './vmdk/index.ts';
import { vhdxFormat } from './vhdx/index.ts';
import { vpcFormat } from './vpc/index.ts';
import { vdiFormat } from './vdi/index.ts';

export const FORMAT_TABLE: readonly ImageFormatDriver[] = [qcow2Format, qcowV1, qed, vmdkFormat, vdiFormat, vhdxFormat, vpcFormat, parallels, bochs, cloop, luks, dmg, rawFormat];

/** The names of every recognised format, raw included. */
export const KNOWN_FORMATS: readonly string[] = FORMAT_TABLE.map((d) => d.format);

export function formatDriver(format: string): ImageFormatDriver | undefined {
  return FORMAT_TABLE.find((d) => d.format === format);
}

/** The first format whose magic matches (raw when none does). */
export function probeDriver(head: Buffer, tail: Buffer | undefined, filename = ''): ImageFormatDriver {
  return FORMAT_TABLE.find((d) => d.probe(head, tail, filename)) ?? rawFormat;
}
