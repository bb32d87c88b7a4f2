/**
 * The architecture of a guest, from the ELF header of one of its binaries
 * (e_ident class and data, e_machine), named as libguestfs names it.
 */
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

const MACHINES: Record<number, (bits: 32 | 64, little: boolean) => string> = {
  0x03: () => 'i386',
  0x3e: () => 'x86_64',
  0x28: () => 'armv7l',
  0xb7: () => 'aarch64',
  0x14: () => 'ppc',
  0x15: (_bits, little) => (little ? 'ppc64le' : 'ppc64'),
  0x16: (bits) => (bits === 64 ? 's390x' : 's390'),
  0xf3: (bits) => (bits === 64 ? 'riscv64' : 'riscv32'),
  0x08: (bits, little) => (bits === 64 ? (little ? 'mips64el' : 'mips64') : little ? 'mipsel' : 'mips'),
  0x02: (bits) => (bits === 64 ? 'sparc64' : 'sparc'),
  0x2b: () => 'sparc64',
  0x32: () => 'ia64',
  0x102: () => 'loongarch64',
};

/** The architecture an ELF header names, or undefined when `head` (its first 20 bytes at least) is not one. */
export function elfArchitecture(head: Buffer): string | undefined {
  if (head.length < 20 || !head.subarray(0, 4).equals(ELF_MAGIC)) return undefined;
  const bits = head[4] === 2 ? 64 : head[4] === 1 ? 32 : undefined;
  const little = head[5] === 1 ? true : head[5] === 2 ? false : undefined;
  if (bits === undefined || little === undefined) return undefined;
  const machine = little ? head.readUInt16LE(18) : head.readUInt16BE(18);
  return MACHINES[machine]?.(bits, little);
}
