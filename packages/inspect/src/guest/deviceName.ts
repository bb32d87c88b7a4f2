/**
 * Device names as libguestfs shows them inside its appliance, in one place:
 * disks in the order given are /dev/sda, /dev/sdb, ... /dev/sdz, /dev/sdaa,
 * ... (the kernel's sd_format_disk_name: bijective base 26), partitions
 * append their number (/dev/sda1, /dev/sdb5), LVM logical volumes are
 * /dev/VG/LV, btrfs subvolumes btrfsvol:DEVICE/PATH.
 */

/** "a" for 0, "z" for 25, "aa" for 26, "zz" for 701, "aaa" for 702. */
export function diskLetters(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`disk index ${index} is not a non-negative integer`);
  let name = '';
  let n = index + 1;
  while (n > 0) {
    n -= 1;
    name = String.fromCharCode(97 + (n % 26)) + name;
    n = Math.floor(n / 26);
  }
  return name;
}

export function diskDevice(index: number): string {
  return `/dev/sd${diskLetters(index)}`;
}

export function partitionDevice(diskIndex: number, partitionNumber: number): string {
  return `${diskDevice(diskIndex)}${partitionNumber}`;
}

/**
 * Canonical form of a device name a user typed (/dev/vda1, /dev/hdb → /dev/sda1, /dev/sdb),
 * as libguestfs canonicalises them; other names are returned unchanged.
 */
export function canonicalDeviceName(name: string): string {
  return name.replace(/^\/dev\/(?:[hv]d|xvd)([a-z]+)(\d*)$/, '/dev/sd$1$2');
}

/** An LVM logical volume as libguestfs names it. */
export function lvDevice(vg: string, lv: string): string {
  return `/dev/${vg}/${lv}`;
}

/** A btrfs subvolume as virt-df and virt-inspector name it. */
export function btrfsSubvolumeDevice(device: string, subvolume: string): string {
  return `btrfsvol:${device}/${subvolume.replace(/^\/+/, '')}`;
}

/** "disk.qcow2 partition 2": the name of a partition's view in error messages. */
export function partitionSourceName(diskName: string, partitionNumber: number): string {
  return `${diskName} partition ${partitionNumber}`;
}
