/**
 * Long file names (VFAT): UTF-16LE in slots of 13 units, stored last slot
 * first, each slot carrying its ordinal and the checksum of the 8.3 entry it
 * belongs to. The text is what the kernel's utf16s_to_utf8s makes of the
 * units: up to the first 0x0000, surrogate pairs joined, and an unpaired
 * surrogate dropped (the kernel skips it), so every name is valid Unicode.
 */
import { LDIR } from './layout.ts';

/** Units the kernel's assembly buffer holds: 20 slots of 13, plus a terminator. */
export const MAX_NAME_UNITS = LDIR.MAX_SLOTS * LDIR.CHARS_PER_SLOT + 1;

/** The 13 UTF-16 units of a slot, in name order. */
export function slotUnits(slot: Buffer, into: Uint16Array, at: number): void {
  for (let i = 0; i < 5; i++) into[at + i] = slot.readUInt16LE(LDIR.LDIR_Name1 + 2 * i);
  for (let i = 0; i < 6; i++) into[at + 5 + i] = slot.readUInt16LE(LDIR.LDIR_Name2 + 2 * i);
  for (let i = 0; i < 2; i++) into[at + 11 + i] = slot.readUInt16LE(LDIR.LDIR_Name3 + 2 * i);
}

/** The name held in `units` (up to the first 0), as the kernel converts it. */
export function longNameText(units: Uint16Array, limit = units.length): string {
  let out = '';
  for (let i = 0; i < limit; i++) {
    const u = units[i];
    if (u === 0) break;
    if (u >= 0xd800 && u <= 0xdfff) {
      if (u >= 0xdc00) continue; // a low surrogate without its high one
      const v = i + 1 < limit ? units[i + 1] : 0;
      if (v < 0xdc00 || v > 0xdfff) continue; // a high surrogate without its low one
      out += String.fromCharCode(u, v);
      i++;
      continue;
    }
    out += String.fromCharCode(u);
  }
  return out;
}
