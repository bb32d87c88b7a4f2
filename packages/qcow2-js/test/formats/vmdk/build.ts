/**
 * VMDK fixtures qemu-img cannot write, built to VMware's Virtual Disk Format
 * 5.0 specification: a stream-optimized extent the way VMware (ovftool,
 * ESXi export) writes it, with grain markers, grain table and grain
 * directory markers, the grain directory only in the footer (the header's
 * gdOffset is GD_AT_END), and an end-of-stream marker.
 */
import zlib from 'node:zlib';

const SECTOR = 512;

function header(capacity: number, grainSectors: number, descriptorSectors: number, gdOffset: bigint, overHead: number): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('KDMV', 0, 'latin1');
  h.writeUInt32LE(3, 4);
  h.writeUInt32LE(0x30001, 8); // newline detection, compressed grains, markers
  h.writeBigUInt64LE(BigInt(capacity), 12);
  h.writeBigUInt64LE(BigInt(grainSectors), 20);
  h.writeBigUInt64LE(1n, 28);
  h.writeBigUInt64LE(BigInt(descriptorSectors), 36);
  h.writeUInt32LE(512, 44);
  h.writeBigUInt64LE(0n, 48);
  h.writeBigUInt64LE(gdOffset, 56);
  h.writeBigUInt64LE(BigInt(overHead), 64);
  h[72] = 0;
  Buffer.from([0x0a, 0x20, 0x0d, 0x0a]).copy(h, 73);
  h.writeUInt16LE(1, 77);
  return h;
}

function marker(numSectors: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(numSectors), 0);
  m.writeUInt32LE(0, 8);
  m.writeUInt32LE(type, 12);
  return m;
}

function pad(b: Buffer): Buffer {
  return b.length % SECTOR ? Buffer.concat([b, Buffer.alloc(SECTOR - (b.length % SECTOR))]) : b;
}

export interface StreamOptions {
  grainSectors?: number;
  /** The name the embedded descriptor gives the extent. */
  name?: string;
  cid?: number;
}

/** A VMware-style stream-optimized VMDK of `disk` (all-zero grains are left out). */
export function vmwareStreamOptimized(disk: Buffer, options: StreamOptions = {}): Buffer {
  const grainSectors = options.grainSectors ?? 128;
  const grainBytes = grainSectors * SECTOR;
  const capacity = Math.ceil(disk.length / SECTOR);
  const grains = Math.ceil(capacity / grainSectors);
  const descriptor = pad(
    Buffer.from(
      [
        '# Disk DescriptorFile',
        'version=1',
        `CID=${(options.cid ?? 0x1234abcd).toString(16)}`,
        'parentCID=ffffffff',
        'createType="streamOptimized"',
        '',
        '# Extent description',
        `RW ${capacity} SPARSE "${options.name ?? 'disk.vmdk'}"`,
        '',
        '# The Disk Data Base',
        '#DDB',
        '',
        'ddb.virtualHWVersion = "8"',
        'ddb.adapterType = "lsilogic"',
        'ddb.toolsInstallType = "4"',
        '',
      ].join('\n'),
      'latin1',
    ),
  );
  const overHead = 128;
  const parts: Buffer[] = [header(capacity, grainSectors, descriptor.length / SECTOR, 0xffffffffffffffffn, overHead), descriptor];
  let sector = 1 + descriptor.length / SECTOR;
  parts.push(Buffer.alloc((overHead - sector) * SECTOR));
  sector = overHead;
  const gte = new Array<number>(grains).fill(0);
  for (let g = 0; g < grains; g++) {
    const data = Buffer.alloc(grainBytes);
    disk.copy(data, 0, g * grainBytes, Math.min(disk.length, (g + 1) * grainBytes));
    if (data.every((b) => b === 0)) continue;
    // The last grain of a disk that ends inside it holds only what the disk has.
    const length = Math.min(grainBytes, disk.length - g * grainBytes);
    const compressed = zlib.deflateSync(data.subarray(0, Math.ceil(length / SECTOR) * SECTOR));
    const m = Buffer.alloc(12);
    m.writeBigUInt64LE(BigInt(g * grainSectors), 0);
    m.writeUInt32LE(compressed.length, 8);
    const grain = pad(Buffer.concat([m, compressed]));
    gte[g] = sector;
    parts.push(grain);
    sector += grain.length / SECTOR;
  }
  const tables = Math.ceil(grains / 512);
  const gd = new Array<number>(tables).fill(0);
  for (let t = 0; t < tables; t++) {
    const entries = gte.slice(t * 512, (t + 1) * 512);
    if (entries.every((e) => e === 0)) continue;
    parts.push(marker(4, 1));
    sector += 1;
    const table = Buffer.alloc(4 * SECTOR);
    entries.forEach((e, i) => table.writeUInt32LE(e, i * 4));
    gd[t] = sector;
    parts.push(table);
    sector += 4;
  }
  const gdSectors = Math.ceil((tables * 4) / SECTOR);
  parts.push(marker(gdSectors, 2));
  sector += 1;
  const gdOffset = sector;
  const directory = Buffer.alloc(gdSectors * SECTOR);
  gd.forEach((e, i) => directory.writeUInt32LE(e, i * 4));
  parts.push(directory);
  parts.push(marker(1, 3));
  parts.push(header(capacity, grainSectors, descriptor.length / SECTOR, BigInt(gdOffset), overHead));
  parts.push(Buffer.alloc(SECTOR));
  return Buffer.concat(parts);
}

/** A descriptor file for `extents` (lines as written after "RW"), with a createType and CIDs. */
export function descriptorFile(createType: string, lines: string[], extra: string[] = [], newline = '\n'): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    'CID=fffffffe',
    'parentCID=ffffffff',
    `createType="${createType}"`,
    ...extra,
    '',
    '# Extent description',
    ...lines,
    '',
    '# The Disk Data Base',
    '#DDB',
    'ddb.virtualHWVersion = "4"',
    '',
  ].join(newline);
}
