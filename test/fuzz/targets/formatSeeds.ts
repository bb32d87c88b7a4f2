/**
 * The image-format seeds as fuzz seeds. The mutated input is a seed's top
 * file; the other files a seed has (a split VMDK's extents, a flat extent,
 * a VHD/VHDX parent) are served unmutated by name (readImage's neighbours),
 * so a crash file still replays alone, with the seeds its target makes.
 */
import type { FormatSeed } from '../../../packages/qcow2-js/test/support/formatFuzzer.ts';
import type { FuzzInput } from '../engine/input.ts';
import type { FuzzTarget, Seed } from '../target.ts';
import { makeFormatSeeds } from '../../../packages/qcow2-js/test/support/formatSeeds.ts';
import { readImage } from './support.ts';

/** Each seed's checksum mender, by its bytes (the engine hands a target its input, not the seed). */
export const formatMend = new Map<Buffer, (input: FuzzInput) => void>();

/** The files the seeds name besides their top files, by format (see readImage). */
export const formatNeighbours = new Map<string, Map<string, Buffer>>();

export async function formatSeeds(made: Promise<FormatSeed[]>, quick: boolean): Promise<Seed[]> {
  const all = await made;
  const single = all.filter((s) => s.files.size === 1);
  const chosen = quick ? single.slice(0, 3) : all;
  for (const s of chosen) {
    const neighbours = formatNeighbours.get(s.format) ?? new Map<string, Buffer>();
    for (const [name, data] of s.files) if (name !== s.top) neighbours.set(name, data);
    formatNeighbours.set(s.format, neighbours);
  }
  return chosen.map((s) => {
    const data = s.files.get(s.top)!;
    if (s.mend) formatMend.set(data, s.mend);
    return { name: s.name, data, hot: s.interesting.map((o) => [o, 8] as [number, number]) };
  });
}

/**
 * The target of one native image format (vmdk, vhdx, vpc, vdi): every
 * layout the seeds have (made by qemu-img or to the specification), read through
 * the format's driver, checksums mended where the format has them.
 */
export function formatTarget(format: 'vmdk' | 'vhdx' | 'vpc' | 'vdi'): FuzzTarget {
  return {
    name: format,
    about: `${format} headers, tables and metadata`,
    seeds: (dir, options) => formatSeeds(makeFormatSeeds(format, dir), options.quick),
    fuzz: (input) => readImage(format, input, formatNeighbours.get(format)),
    mend: (input) => formatMend.get(input.base)?.(input),
  };
}
