/**
 * Directory contents as the Linux vfat driver lists them (fs/fat/dir.c
 * __fat_readdir and fat_parse_long): every 32-byte entry to the end of the
 * directory's clusters (Linux does not stop at a 0x00 entry, it skips it as
 * free), long-name slots gathered last slot first and accepted only when
 * their ordinals count down, their checksums agree with each other and with
 * the 8.3 entry that follows; a sequence broken anywhere is dropped and the
 * entry after it read on its own (orphaned slots are ignored); volume
 * labels, free entries and "." / ".." are not listed.
 *
 * Deleted entries (DIR_Name[0] = 0xE5) are kept aside for the forensic view:
 * their first character is lost, and is shown as '_' (as The Sleuth Kit
 * shows it); a long name survives when the deleted slots just before the
 * entry still agree with each other and with the entry's checksum for some
 * value of the lost byte.
 */
import { longNameText, MAX_NAME_UNITS, slotUnits } from './longName.ts';
import { shortNameChecksum, shortNameText } from './shortName.ts';
import { ATTR, DELETED_FLAG, DIR_ENTRY_SIZE, DIRENT, DOT_NAME, DOTDOT_NAME, LDIR } from './layout.ts';

/** One 8.3 entry with the name readdir shows for it. */
export interface FatDirEntry {
  /** The long name when one belongs to the entry, else the 8.3 name. */
  name: string;
  /** The 8.3 name as displayed ('' when nothing is left of it). */
  shortName: string;
  longName: string | undefined;
  /** Offset of the 8.3 entry in the directory's bytes. */
  offset: number;
  /** The 32 bytes of the 8.3 entry. */
  raw: Buffer;
  attr: number;
}

export interface FatDeletedEntry {
  name: string;
  offset: number;
  raw: Buffer;
  attr: number;
}

export interface ParsedDirectory {
  entries: FatDirEntry[];
  deleted: FatDeletedEntry[];
  /** Entries the kernel's fat_subdirs counts: in use, not a label or long-name slot, with the directory bit ("." and ".." included). */
  subdirs: number;
  /** The first volume-label entry, by blkid's rule (root directories only). */
  label: Buffer | undefined;
}

const enum Parse {
  Ok,
  Invalid,
  NotLongName,
  Eof,
}

const isFree = (e: Buffer) => e[0] === 0 || e[0] === DELETED_FLAG;

export function parseDirectory(data: Buffer, isRoot: boolean): ParsedDirectory {
  const count = Math.floor(data.length / DIR_ENTRY_SIZE);
  const at = (i: number) => data.subarray(i * DIR_ENTRY_SIZE, (i + 1) * DIR_ENTRY_SIZE);
  const units = new Uint16Array(MAX_NAME_UNITS);
  const entries: FatDirEntry[] = [];
  const deleted: FatDeletedEntry[] = [];
  let subdirs = 0;

  for (let i = 0; i < count; i++) {
    const e = at(i);
    if (!isFree(e) && !(e[DIRENT.DIR_Attr] & ATTR.VOLUME_ID) && e[DIRENT.DIR_Attr] & ATTR.DIRECTORY) subdirs++;
  }

  /** fat_parse_long from entry `i` (a slot): the outcome, the index it stopped at, and the slot count (0 when the checksum did not match). */
  const parseLong = (start: number): { status: Parse; index: number; slots: number } => {
    let i = start;
    for (;;) {
      let ds = at(i);
      const id = ds[LDIR.LDIR_Ord];
      if (!(id & LDIR.LAST_LONG_ENTRY)) return { status: Parse.Invalid, index: i, slots: 0 };
      const slots = id & ~LDIR.LAST_LONG_ENTRY;
      if (slots > LDIR.MAX_SLOTS || slots === 0) return { status: Parse.Invalid, index: i, slots: 0 };
      const checksum = ds[LDIR.LDIR_Chksum];
      let slot = slots;
      let restart = false;
      for (;;) {
        slot--;
        const offset = slot * LDIR.CHARS_PER_SLOT;
        slotUnits(ds, units, offset);
        if (ds[LDIR.LDIR_Ord] & LDIR.LAST_LONG_ENTRY) units[offset + LDIR.CHARS_PER_SLOT] = 0;
        i++;
        if (i >= count) return { status: Parse.Eof, index: i, slots: 0 };
        if (slot === 0) break;
        ds = at(i);
        if (ds[LDIR.LDIR_Attr] !== ATTR.LONG_NAME) return { status: Parse.NotLongName, index: i, slots: 0 };
        if ((ds[LDIR.LDIR_Ord] & ~LDIR.LAST_LONG_ENTRY) !== slot || ds[LDIR.LDIR_Chksum] !== checksum) {
          restart = true;
          break;
        }
      }
      if (restart) continue;
      const de = at(i);
      if (de[0] === DELETED_FLAG) return { status: Parse.Invalid, index: i, slots: 0 };
      if (de[DIRENT.DIR_Attr] === ATTR.LONG_NAME) continue;
      if (isFree(de) || de[DIRENT.DIR_Attr] & ATTR.VOLUME_ID) return { status: Parse.Invalid, index: i, slots: 0 };
      return { status: Parse.Ok, index: i, slots: shortNameChecksum(de) === checksum ? slots : 0 };
    }
  };

  let i = 0;
  entryLoop: while (i < count) {
    let e = at(i);
    let slots = 0;
    for (;;) {
      const attr = e[DIRENT.DIR_Attr];
      if (e[0] === DELETED_FLAG) {
        if (attr !== ATTR.LONG_NAME && !(attr & ATTR.VOLUME_ID)) deleted.push(deletedEntry(data, i));
        i++;
        continue entryLoop;
      }
      if (attr !== ATTR.LONG_NAME && (attr & ATTR.VOLUME_ID || e[0] === 0)) {
        i++;
        continue entryLoop;
      }
      if (attr === ATTR.LONG_NAME) {
        const r = parseLong(i);
        if (r.status === Parse.Eof) break entryLoop;
        if (r.status === Parse.Invalid) {
          i = r.index + 1;
          continue entryLoop;
        }
        i = r.index;
        e = at(i);
        if (r.status === Parse.NotLongName) continue; // read that entry on its own
        slots = r.slots;
      }
      break;
    }
    const shortName = shortNameText(e.subarray(DIRENT.DIR_Name, DIRENT.DIR_Name + 11), e[DIRENT.DIR_NTRes]);
    const longName = slots ? longNameText(units, slots * LDIR.CHARS_PER_SLOT + 1) : undefined;
    const nameBytes = e.subarray(0, 11);
    i++;
    if (nameBytes.equals(DOT_NAME) || nameBytes.equals(DOTDOT_NAME)) continue;
    // The kernel would list an empty long name as an empty name; the 8.3 name is the useful one then.
    const name = longName || shortName;
    if (!name) continue;
    entries.push({ name, shortName, longName: longName || undefined, offset: (i - 1) * DIR_ENTRY_SIZE, raw: Buffer.from(e), attr: e[DIRENT.DIR_Attr] });
  }

  return { entries, deleted, subdirs, label: isRoot ? findLabel(data, count) : undefined };
}

/** libblkid's search for the label entry: stop at 0x00, skip deleted entries, slots and entries with a cluster. */
function findLabel(data: Buffer, count: number): Buffer | undefined {
  for (let i = 0; i < count; i++) {
    const e = data.subarray(i * DIR_ENTRY_SIZE, (i + 1) * DIR_ENTRY_SIZE);
    if (e[0] === 0) return undefined;
    const attr = e[DIRENT.DIR_Attr];
    if (e[0] === DELETED_FLAG || e.readUInt16LE(DIRENT.DIR_FstClusHI) !== 0 || e.readUInt16LE(DIRENT.DIR_FstClusLO) !== 0 || (attr & ATTR.LONG_NAME_MASK) === ATTR.LONG_NAME) continue;
    if ((attr & (ATTR.VOLUME_ID | ATTR.DIRECTORY)) === ATTR.VOLUME_ID) return Buffer.from(e.subarray(0, 11));
  }
  return undefined;
}

/** A deleted 8.3 entry at index `i`, with what can be recovered of its name. */
function deletedEntry(data: Buffer, i: number): FatDeletedEntry {
  const e = data.subarray(i * DIR_ENTRY_SIZE, (i + 1) * DIR_ENTRY_SIZE);
  const name11 = Buffer.from(e.subarray(0, 11));
  const ntRes = e[DIRENT.DIR_NTRes];
  // The slots just before, nearest first; deletion overwrote their ordinals too.
  const slots: Buffer[] = [];
  for (let k = i - 1; k >= 0 && slots.length < LDIR.MAX_SLOTS; k--) {
    const s = data.subarray(k * DIR_ENTRY_SIZE, (k + 1) * DIR_ENTRY_SIZE);
    if (s[0] !== DELETED_FLAG || s[LDIR.LDIR_Attr] !== ATTR.LONG_NAME || (slots.length && s[LDIR.LDIR_Chksum] !== slots[0][LDIR.LDIR_Chksum])) break;
    slots.push(s);
  }
  let longName: string | undefined;
  if (slots.length) {
    // The checksum fixes the lost first byte (each value gives a different sum); the slots belong to the entry when that byte could start an 8.3 name.
    const probe = Buffer.from(name11);
    let lost = -1;
    for (let b = 0; b < 256 && lost < 0; b++) {
      probe[0] = b;
      if (shortNameChecksum(probe) === slots[0][LDIR.LDIR_Chksum]) lost = b;
    }
    if (lost >= 0 && validFirstByte(lost)) {
      const units = new Uint16Array(slots.length * LDIR.CHARS_PER_SLOT + 1);
      slots.forEach((s, n) => slotUnits(s, units, n * LDIR.CHARS_PER_SLOT));
      longName = longNameText(units) || undefined;
    }
  }
  const display = Buffer.from(name11);
  display[0] = 0x5f; // '_'
  return { name: longName ?? (shortNameText(display, ntRes) || '_'), offset: i * DIR_ENTRY_SIZE, raw: Buffer.from(e), attr: e[DIRENT.DIR_Attr] };
}

/** A byte an 8.3 name may start with (upper case, digits, the allowed punctuation, code page 437 above 0x7F). */
function validFirstByte(b: number): boolean {
  if (b >= 0x80) return b !== DELETED_FLAG;
  if (b === 0x05) return true; // stands for 0xE5
  if (b === 0x7f) return false;
  if (b <= 0x20 || (b >= 0x61 && b <= 0x7a)) return false;
  return !'"*+,./:;<=>?[\\]|'.includes(String.fromCharCode(b));
}
