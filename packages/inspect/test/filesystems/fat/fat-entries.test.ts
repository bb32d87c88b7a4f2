/**
 * The pieces of the FAT driver that turn directory bytes into names and
 * times, on entries made by hand where mtools cannot make them (surrogate
 * pairs, broken long-name sequences, entries past a 0x00 entry, damaged
 * time fields): each case is what the Linux vfat driver does with those
 * bytes (fs/fat/dir.c, fs/fat/misc.c), cross-checked with Date.UTC for
 * every valid date.
 */
import assert from 'node:assert/strict';
import { fatTime } from '../../../src/filesystems/fat/time.ts';
import { shortNameChecksum, shortNameText } from '../../../src/filesystems/fat/shortName.ts';
import { longNameText } from '../../../src/filesystems/fat/longName.ts';
import { parseDirectory } from '../../../src/filesystems/fat/directory.ts';
import { ATTR } from '../../../src/filesystems/fat/layout.ts';
import { Prng } from '../../../../../test/support/prng.ts';

/** An 8.3 entry: `name` is the 11 stored bytes as Latin-1 text. */
function shortEntry(name: string, options: { attr?: number; ntRes?: number; start?: number; size?: number } = {}): Buffer {
  const e = Buffer.alloc(32);
  Buffer.from(name.padEnd(11, ' '), 'latin1').copy(e, 0, 0, 11);
  e[11] = options.attr ?? ATTR.ARCHIVE;
  e[12] = options.ntRes ?? 0;
  e.writeUInt16LE(options.start ?? 3, 26);
  e.writeUInt32LE(options.size ?? 1, 28);
  return e;
}

/** The long-name slots of `units` (UTF-16 code units) for an 8.3 entry, last slot first, as stored. */
function slots(units: number[], checksum: number, options: { ordinals?: number[] } = {}): Buffer[] {
  const padded = [...units];
  if (padded.length % 13) padded.push(0);
  while (padded.length % 13) padded.push(0xffff);
  const count = padded.length / 13;
  const out: Buffer[] = [];
  for (let n = count; n >= 1; n--) {
    const s = Buffer.alloc(32);
    s[0] = options.ordinals?.[count - n] ?? (n === count ? 0x40 | n : n);
    s[11] = ATTR.LONG_NAME;
    s[13] = checksum;
    const chunk = padded.slice((n - 1) * 13, n * 13);
    chunk.forEach((u, i) => {
      const at = i < 5 ? 1 + 2 * i : i < 11 ? 14 + 2 * (i - 5) : 28 + 2 * (i - 11);
      s.writeUInt16LE(u, at);
    });
    out.push(s);
  }
  return out;
}

const units = (s: string) => [...Buffer.from(s, 'utf16le')].reduce<number[]>((a, b, i, all) => (i % 2 ? a : [...a, b | (all[i + 1] << 8)]), []);

function names(...entries: Buffer[]): string[] {
  return parseDirectory(Buffer.concat(entries), false).entries.map((e) => e.name);
}

describe('FAT entries: times as fat_time_fat2unix computes them (read as UTC)', () => {
  it('equals Date.UTC for every valid field, 1980 to 2107, 2100 not a leap year', () => {
    const rng = new Prng(0xfa7);
    for (let n = 0; n < 20000; n++) {
      const year = 1980 + rng.below(128);
      const month = 1 + rng.below(12);
      const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
      const day = 1 + rng.below(days);
      const [h, m, s2] = [rng.below(24), rng.below(60), rng.below(30)];
      const date = ((year - 1980) << 9) | (month << 5) | day;
      const time = (h << 11) | (m << 5) | s2;
      assert.deepEqual(fatTime(time, date), { sec: Date.UTC(year, month - 1, day, h, m, 2 * s2) / 1000, nsec: 0 }, `${year}-${month}-${day}`);
    }
    assert.equal(fatTime(0, ((2100 - 1980) << 9) | (3 << 5) | 1).sec, Date.UTC(2100, 2, 1) / 1000);
  });

  it('adds hundredths to creation times (199 is 1.99 s) and treats damaged fields as the kernel does', () => {
    const date = (44 << 9) | (6 << 5) | 15; // 2024-06-15
    assert.deepEqual(fatTime(0, date, 199), { sec: Date.UTC(2024, 5, 15, 0, 0, 1) / 1000, nsec: 990_000_000 });
    assert.deepEqual(fatTime(0, date, 255), { sec: Date.UTC(2024, 5, 15, 0, 0, 2) / 1000, nsec: 550_000_000 });
    // Date 0: month 0 counts as January, day 0 as the 1st: 1980-01-01.
    assert.equal(fatTime(0, 0).sec, Date.UTC(1980, 0, 1) / 1000);
    // Month 13..15 add no days, like January, but still count a leap year's February 29.
    assert.equal(fatTime(0, (43 << 9) | (13 << 5) | 2).sec, Date.UTC(2023, 0, 2) / 1000);
    assert.equal(fatTime(0, (44 << 9) | (13 << 5) | 2).sec, Date.UTC(2024, 0, 3) / 1000);
    // Day 31 of February runs into March; 2-second count 30 is one minute; hour 31 is past midnight.
    assert.equal(fatTime(0, (44 << 9) | (2 << 5) | 31).sec, Date.UTC(2024, 2, 2) / 1000);
    assert.equal(fatTime(30, date).sec, Date.UTC(2024, 5, 15, 0, 1, 0) / 1000);
    assert.equal(fatTime(31 << 11, date).sec, Date.UTC(2024, 5, 15, 31, 0, 0) / 1000);
    // An offset, as time_offset= would give: stored local time 2 hours ahead of UTC.
    assert.equal(fatTime(12 << 11, date, 0, 120).sec, Date.UTC(2024, 5, 15, 10) / 1000);
  });
});

describe('FAT entries: 8.3 names as fat_parse_short shows them', () => {
  it('trims each part, keeps inner spaces, drops an empty extension, applies the NT case bits', () => {
    assert.equal(shortNameText(Buffer.from('README  TXT', 'latin1'), 0), 'README.TXT');
    assert.equal(shortNameText(Buffer.from('README  TXT', 'latin1'), 0x08), 'readme.TXT');
    assert.equal(shortNameText(Buffer.from('README  TXT', 'latin1'), 0x10), 'README.txt');
    assert.equal(shortNameText(Buffer.from('README  TXT', 'latin1'), 0x18), 'readme.txt');
    assert.equal(shortNameText(Buffer.from('A B     C D', 'latin1'), 0), 'A B.C D');
    assert.equal(shortNameText(Buffer.from('NOEXT      ', 'latin1'), 0), 'NOEXT');
    assert.equal(shortNameText(Buffer.from('        TXT', 'latin1'), 0), '.TXT');
    assert.equal(shortNameText(Buffer.from('           ', 'latin1'), 0), '');
    // A NUL ends the base early; the extension is still read.
    assert.equal(shortNameText(Buffer.from('AB\0\0\0\0\0\0TXT', 'latin1'), 0), 'AB.TXT');
  });

  it('decodes code page 437, 0x05 as 0xE5 (σ), and lowers only what code page 437 can lower', () => {
    assert.equal(shortNameText(Buffer.from([0x80, 0x41, 0x56, 0x41, 0x20, 0x20, 0x20, 0x20, 0x54, 0x58, 0x54]), 0), 'ÇAVA.TXT');
    assert.equal(shortNameText(Buffer.from([0x80, 0x41, 0x56, 0x41, 0x20, 0x20, 0x20, 0x20, 0x54, 0x58, 0x54]), 0x18), 'çava.txt');
    assert.equal(shortNameText(Buffer.from([0x05, 0x41, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]), 0), 'σA');
    // Σ lowers to σ, Γ has no lower case in code page 437 and stays.
    assert.equal(shortNameText(Buffer.from([0xe4, 0xe2, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]), 0x08), 'σΓ');
  });

  it('computes the checksum long-name slots carry', () => {
    // A value computed by hand from the rotate-and-add rule over "FILENAMETXT".
    let sum = 0;
    for (const b of Buffer.from('FILENAMETXT', 'latin1')) sum = (((sum & 1) << 7) + (sum >> 1) + b) & 0xff;
    assert.equal(shortNameChecksum(Buffer.from('FILENAMETXT', 'latin1')), sum);
  });
});

describe('FAT entries: long names as the vfat driver assembles them', () => {
  it('joins surrogate pairs and drops unpaired surrogates (utf16s_to_utf8s)', () => {
    assert.equal(longNameText(Uint16Array.from([0x61, 0xd83d, 0xde00, 0x62, 0])), 'a😀b');
    assert.equal(longNameText(Uint16Array.from([0x61, 0xd83d, 0x62, 0xde00, 0x63, 0])), 'abc');
    assert.equal(longNameText(Uint16Array.from([0x61, 0x62, 0, 0x63])), 'ab');
  });

  it('uses a long name only when ordinals, checksums and the 8.3 entry agree', () => {
    const short = shortEntry('SMILEY~1TXT');
    const sum = shortNameChecksum(short.subarray(0, 11));
    const name = units('smiley 😀 file with a long name.txt');
    assert.deepEqual(names(...slots(name, sum), short), ['smiley 😀 file with a long name.txt']);
    // A wrong checksum in every slot: the 8.3 name is shown.
    assert.deepEqual(names(...slots(name, sum ^ 1), short), ['SMILEY~1.TXT']);
    // Slots out of order (ordinals 0x43, 1, 2): the sequence is dropped, the 8.3 entry read alone.
    assert.deepEqual(names(...slots(name, sum, { ordinals: [0x43, 1, 2] }), short), ['SMILEY~1.TXT']);
    // Orphaned slots (no 8.3 entry follows: a label) are ignored, the next entry is read on its own.
    assert.deepEqual(names(...slots(name, sum), shortEntry('LABEL', { attr: ATTR.VOLUME_ID, start: 0 }), shortEntry('OTHER   TXT')), ['OTHER.TXT']);
    // Slots interrupted by an 8.3 entry: that entry stands alone.
    const [first, ...rest] = slots(name, sum);
    assert.deepEqual(names(first, shortEntry('MIDDLE  TXT'), ...rest, short), ['MIDDLE.TXT', 'SMILEY~1.TXT']);
    // More than 20 slots is not a long name.
    const s21 = slots(units('x'), sum);
    s21[0][0] = 0x40 | 21;
    assert.deepEqual(names(...s21, short), ['SMILEY~1.TXT']);
    // A long name that is empty: the 8.3 name (the kernel would list an empty name).
    assert.deepEqual(names(...slots([], sum), short), ['SMILEY~1.TXT']);
  });

  it('reads past a 0x00 entry (Linux does not stop there), skips deleted, label, "." and ".." entries, and counts subdirectories', () => {
    const dir = Buffer.concat([
      shortEntry('.', { attr: ATTR.DIRECTORY }),
      shortEntry('..', { attr: ATTR.DIRECTORY, start: 0 }),
      shortEntry('LABEL', { attr: ATTR.VOLUME_ID, start: 0 }),
      shortEntry('\u00e5DELETEDTXT'),
      shortEntry('SUB', { attr: ATTR.DIRECTORY }),
      Buffer.alloc(32),
      shortEntry('AFTER   TXT'),
    ]);
    const parsed = parseDirectory(dir, true);
    assert.deepEqual(parsed.entries.map((e) => e.name), ['SUB', 'AFTER.TXT']);
    assert.equal(parsed.subdirs, 3);
    assert.deepEqual(parsed.deleted.map((d) => d.name), ['_DELETED.TXT']);
    // blkid's rule for the label stops at the 0x00 entry, and finds the label before it.
    assert.equal(parsed.label?.toString('latin1').trim(), 'LABEL');
  });
});
