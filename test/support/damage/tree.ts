/**
 * The small tree every base image holds, so directory and inode damage hits
 * something: nested directories, a directory of many entries (several
 * directory blocks; an htree on ext4), empty, small, multi-block and sparse
 * files, a symlink, a hard link. Written through a mounted directory (the
 * kernel, ntfs-3g) or described for mtools (FAT).
 */
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withKernelMount } from '../kernel.ts';

export const TREE_DIRS = ['etc', 'etc/conf.d', 'home', 'home/user', 'home/user/docs', 'many', 'var', 'var/log'];

export const TREE_FILES: Array<[string, Buffer]> = [
  ['etc/hostname', Buffer.from('damaged-guest\n')],
  ['etc/empty', Buffer.alloc(0)],
  ['etc/conf.d/net', Buffer.from('config_eth0="dhcp"\n'.repeat(40))],
  ['home/user/docs/report-with-a-long-name.txt', Buffer.alloc(70_000, 'r')],
  ['var/log/messages', Buffer.alloc(300_000, 'm')],
  ...Array.from({ length: 60 }, (_, i): [string, Buffer] => [`many/entry-number-${String(i).padStart(3, '0')}.dat`, Buffer.alloc(i * 37, i)]),
];

/** Fill a mounted directory with the tree (symlink and hard link where `links`). */
export function writeTree(dir: string, links = true): void {
  for (const d of TREE_DIRS) mkdirSync(join(dir, d), { recursive: true });
  for (const [f, data] of TREE_FILES) writeFileSync(join(dir, f), data);
  if (links) {
    symlinkSync('../etc/hostname', join(dir, 'home', 'hostname-link'));
    linkSync(join(dir, 'etc', 'hostname'), join(dir, 'var', 'hostname-hardlink'));
  }
}

/** Fill a filesystem image that the kernel mounts read-write (ext4, xfs, btrfs). */
export async function populateThroughKernel(image: string): Promise<void> {
  await withKernelMount(image, { readWrite: true }, async (m) => writeTree(m.dir));
}
