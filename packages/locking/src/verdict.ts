/**
 * The one-line summary of a probe, phrased by what a QEMU opener would meet:
 * a read-only open (qemu-img info, qemu-io -r) tests bytes 200, 101 and 103;
 * a read-write one also 201 and 203.
 */
import { holderLabel } from './errors.ts';
import type { ImageHolder, ProbeResult } from './probe.ts';

const WRITING = ['write', 'write unchanged', 'resize'];

function names(holders: ImageHolder[]): string {
  const labels: string[] = [];
  for (const h of holders) {
    const label = holderLabel(h);
    if (!labels.includes(label)) labels.push(label);
  }
  return labels.length <= 2 ? labels.join(' and ') : `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
}

export function verdictOf(result: Pick<ProbeResult, 'heldBytes' | 'holders'>): string {
  if (result.heldBytes.length === 0) return 'free';
  const held = (byte: number): boolean => result.heldBytes.includes(byte);
  const writers = result.holders.filter((h) => h.uses.some((p) => WRITING.includes(p)));
  const mode = writers.length > 0 ? 'read-write' : 'read-only';
  const who = names(writers.length > 0 ? writers : result.holders);
  const readRefused = held(200) || held(101) || held(103);
  const writeRefused = readRefused || held(201) || held(203);
  const consequence = readRefused ? 'reading needs an overlay' : writeRefused ? 'reading is fine, writing is refused' : 'it shares everything: others may read and write';
  return `in use ${mode} by ${who}: ${consequence}`;
}
