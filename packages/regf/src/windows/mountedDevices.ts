/**
 * SYSTEM\MountedDevices: one value per volume Windows has seen, named
 * "\DosDevices\C:" for a drive letter or "\??\Volume{GUID}" for a volume
 * GUID path, whose data says which partition it is:
 *  - 12 bytes: an MBR disk, the disk signature (the 32-bit number at byte 440
 *    of sector 0) then the partition's byte offset (64 bits);
 *  - "DMIO:ID:" and 16 bytes: a GPT partition, its unique partition GUID;
 *  - a UTF-16 device path ("\??\SCSI#CdRom&Ven_...", "_??_USBSTOR#..."):
 *    removable media and optical drives, not a partition.
 * (libguestfs reads it the same way; see its daemon/inspect_fs_windows.ml.)
 * The disk signature and GUID are given in the forms guestlens's partition
 * tables print them (PartitionTable.diskId "0x1a2b3c4d", Partition.uuid upper
 * case), so matching a drive letter to a partition is a string comparison.
 */
export type MountedDeviceTarget =
  /** A partition of an MBR disk. */
  | { kind: 'mbr'; diskSignature: string; partitionOffset: number }
  /** A GPT partition, by its unique partition GUID. */
  | { kind: 'gpt'; partitionGuid: string }
  /** A device path (optical drive, USB storage): not a partition of the guest's disks. */
  | { kind: 'device'; path: string }
  /** Anything else (dynamic disk volumes, forms we do not know): the bytes in hex. */
  | { kind: 'unknown'; length: number; hex: string };

export interface MountedDevice {
  /** The value name ("\DosDevices\C:", "\??\Volume{...}"). */
  name: string;
  /** "C" for "\DosDevices\C:". */
  driveLetter?: string;
  /** "{6b29fc40-ca47-1067-b31d-00dd010662da}" for a volume GUID path, as Windows writes it. */
  volumeGuid?: string;
  target: MountedDeviceTarget;
}

const DOS_DEVICE = /^\\DosDevices\\([A-Za-z]):$/;
const VOLUME = /^\\\?\?\\Volume(\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\})$/;
const GPT_PREFIX = 'DMIO:ID:';

export function decodeMountedDevice(name: string, data: Buffer): MountedDevice {
  const device: MountedDevice = { name, target: decodeTarget(data) };
  const letter = DOS_DEVICE.exec(name);
  if (letter) device.driveLetter = letter[1].toUpperCase();
  const volume = VOLUME.exec(name);
  if (volume) device.volumeGuid = volume[1];
  return device;
}

export function decodeTarget(data: Buffer): MountedDeviceTarget {
  // An offset beyond 2^53 is no partition of any disk we read: it falls through to 'unknown'.
  if (data.length === 12 && data.readBigUInt64LE(4) <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return {
      kind: 'mbr',
      diskSignature: `0x${data.readUInt32LE(0).toString(16).padStart(8, '0')}`,
      partitionOffset: Number(data.readBigUInt64LE(4)),
    };
  }
  if (data.length >= 24 && data.toString('latin1', 0, 8) === GPT_PREFIX) return { kind: 'gpt', partitionGuid: formatGuid(data.subarray(8, 24)) };
  if (data.length >= 8 && data.length % 2 === 0) {
    const head = data.toString('utf16le', 0, 8);
    if (head === '\\??\\' || head === '_??_') return { kind: 'device', path: data.toString('utf16le').replace(/\0+$/, '') };
  }
  return { kind: 'unknown', length: data.length, hex: data.subarray(0, 64).toString('hex') };
}

/** A GUID in its binary layout (first three fields little-endian), upper case, as GPT partition GUIDs are printed. */
export function formatGuid(b: Buffer): string {
  const le = (start: number, len: number) => Buffer.from(b.subarray(start, start + len)).reverse().toString('hex');
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${b.subarray(8, 10).toString('hex')}-${b.subarray(10, 16).toString('hex')}`.toUpperCase();
}
