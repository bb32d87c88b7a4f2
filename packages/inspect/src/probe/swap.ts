/**
 * Linux swap: the signature sits in the last 10 bytes of the first page,
 * whose size depends on the machine that ran mkswap (4 KiB .. 64 KiB).
 * "SWAPSPACE2" (v1) has a header with UUID and label at 1 KiB;
 * "SWAP-SPACE" (v0, before Linux 2.2) has neither. Hibernation images
 * overwrite the signature with their own: blkid calls them swsuspend.
 */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

const PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];
const SUSPEND_MAGICS = ['S1SUSPEND', 'S2SUSPEND', 'ULSUSPEND', '\xed\xc3\x02\xe9\x98\x56\xe5\x0c', 'LINHIB0001'];
const HEADER_OFFSET = 1024;

export async function probeSwap(r: ProbeReader): Promise<ProbeResult | undefined> {
  for (const page of PAGE_SIZES) {
    const tail = await r.read(page - 10, 10);
    if (!tail) return undefined;
    const magic = tail.toString('latin1');
    if (magic === 'SWAP-SPACE') return { type: 'swap', usage: 'other', version: '0' };
    if (magic === 'SWAPSPACE2') return swapHeaderInfo(r, 'swap', true);
    if (SUSPEND_MAGICS.some((m) => magic.startsWith(m))) return swapHeaderInfo(r, 'swsuspend', false);
  }
  return undefined;
}

async function swapHeaderInfo(r: ProbeReader, type: string, strict: boolean): Promise<ProbeResult | undefined> {
  const hdr = await r.read(HEADER_OFFSET, 184);
  if (!hdr) return undefined;
  if (strict) {
    // The header is in the byte order of the machine that wrote it; version 1 tells which.
    if (hdr.readUInt32LE(0) !== 1 && hdr.readUInt32BE(0) !== 1) return undefined;
    if (hdr.readUInt32LE(4) === 0) return undefined;
  }
  const result: ProbeResult = { type, usage: 'other', version: '1' };
  // blkid trusts UUID and label only when the padding after them is clean.
  if (hdr.readUInt32LE(44 + 32 * 4) === 0 && hdr.readUInt32LE(44 + 33 * 4) === 0) {
    result.uuid = formatUuid(hdr.subarray(12, 28));
    result.label = labelFrom(hdr.subarray(28, 44));
  }
  return result;
}
