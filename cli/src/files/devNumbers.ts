/**
 * st_dev as the guest kernel (libguestfs's appliance) numbers its devices:
 * SCSI disks sd* (major 8, then 65..71 for disks past the 16th, 16 minors
 * each), device-mapper logical volumes (major 253, in guest order).
 */
export function deviceNumbers(device: string, logicalVolumes: string[]): { major: number; minor: number } {
  // A btrfs subvolume is on its filesystem's device.
  const dev = /^btrfsvol:(\/dev\/[^/]+)/.exec(device)?.[1] ?? device;
  const m = /^\/dev\/sd([a-z]+)(\d*)$/.exec(dev);
  if (m) {
    let index = 0;
    for (const c of m[1]) index = index * 26 + (c.charCodeAt(0) - 96);
    index -= 1;
    const part = m[2] ? Number(m[2]) : 0;
    const major = index < 16 ? 8 : 65 + Math.floor((index - 16) / 16);
    return { major, minor: (index % 16) * 16 + part };
  }
  const lv = logicalVolumes.indexOf(device);
  if (lv >= 0) return { major: 253, minor: lv };
  return { major: 0, minor: 0 };
}
