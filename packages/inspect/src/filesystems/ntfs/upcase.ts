/**
 * $UpCase: the volume's own upper-case table (one 16-bit code per UTF-16
 * unit), written by the format tool. Directory indexes are sorted by names
 * upper-cased with this table, so looking a name up means using the same
 * table, not today's Unicode. Checked as ntfs-3g checks it: an even size of
 * at most 128 KiB, and plain ASCII mapped as ASCII.
 */

export class Upcase {
  private constructor(readonly table: Uint16Array) {}

  /** A table from $UpCase's data, or why it cannot be one. */
  static parse(data: Buffer): Upcase | string {
    if (data.length < 2 || data.length > 131072 || data.length % 2) return `size ${data.length} is not even and at most 131072`;
    const table = new Uint16Array(data.length / 2);
    for (let i = 0; i < table.length; i++) table[i] = data.readUInt16LE(i * 2);
    for (let k = 0x20; k < 0x7f; k++) {
      const want = k >= 0x61 && k <= 0x7a ? k - 0x20 : k;
      if (k >= table.length || table[k] !== want) return `code 0x${k.toString(16)} maps to 0x${(table[k] ?? 0).toString(16)}, not 0x${want.toString(16)}`;
    }
    return new Upcase(table);
  }

  /** The upper case of one UTF-16 code unit. */
  up(c: number): number {
    return c < this.table.length ? this.table[c] : c;
  }
}
