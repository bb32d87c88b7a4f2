/**
 * guestlens stat: one guest path's inode, type, mode, links, owners, size,
 * blocks, the four timestamps with nanoseconds where the filesystem has
 * them, the link target and the extended attributes; text or --json.
 * A final symbolic link is described, not followed (lstat), unless -L.
 */
import type { Argv, CommandModule } from 'yargs';
import type { FileStat, Timestamp } from '@guestlens/inspect';
import { UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree } from '../guest/openTree.ts';
import { resolveGuestPath } from '../guest/guestPaths.ts';
import { forEachPath } from '../guest/perPath.ts';
import { displayName, safeText } from '../output/names.ts';
import { modeString } from '../files/modes.ts';
import { timestampJson } from '../files/statJson.ts';

interface StatArgs extends GuestArgs {
  operands: string[];
  json: boolean;
  dereference: boolean;
  mount: string[];
}

export const statCommand: CommandModule<object, StatArgs> = {
  command: 'stat [operands..]',
  describe: 'Inode, mode, owners, size, timestamps and extended attributes of guest paths',
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens stat IMAGE PATH... [--json] [-L]')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('dereference', { alias: 'L', type: 'boolean', default: false, describe: 'follow a final symbolic link' })
      .option('json', { type: 'boolean', default: false, describe: 'JSON: one object per path' }) as unknown as Argv<StatArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('stat', args, args.operands);
    if (operands.length === 0) throw new UsageError('stat: name at least one path of the guest');
    const opened = await openTree(job, { backing: backingPolicy('stat', args.backing), mount: args.mount });
    const results: object[] = [];
    try {
      for (const p of opened.problems) process.stderr.write(`guestlens: stat: ${job.name}: ${safeText(p)}\n`);
      const windows = opened.os?.type === 'windows';
      await forEachPath('stat', job.name, operands, async (input) => {
        const path = await resolveGuestPath(opened.tree, input, windows);
        const r = await opened.tree.resolve(path, args.dereference);
        const target = r.stat.type === 'symlink' ? await r.fs.readlink(r.ino) : undefined;
        const xattrs: Record<string, string> = {};
        for (const name of r.fs.listxattr ? await r.fs.listxattr(r.ino) : []) xattrs[name] = (await r.fs.getxattr!(r.ino, name)).toString('base64');
        if (args.json) results.push(statJson(input, r.canonicalPath, r.device, r.stat, target, xattrs));
        else process.stdout.write(statText(input, r.device, r.stat, target, xattrs));
      });
      if (args.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    } finally {
      await opened.close();
    }
  },
};

const TYPE_NAMES = { file: 'regular file', directory: 'directory', symlink: 'symbolic link', chardev: 'character special file', blockdev: 'block special file', fifo: 'fifo', socket: 'socket', unknown: 'unknown' };

function when(t: Timestamp | undefined): string {
  if (!t) return '-';
  const j = timestampJson(t);
  return j.iso ? `${j.iso.slice(0, 10)} ${j.iso.slice(11, 29)} +0000` : `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
}

function statText(path: string, device: string, st: FileStat, target: string | undefined, xattrs: Record<string, string>): string {
  const lines = [
    `  File: ${displayName(path)}${target !== undefined ? ` -> ${displayName(target)}` : ''}`,
    `  Size: ${st.size}\tBlocks: ${st.blocks}\t${TYPE_NAMES[st.type]}`,
    `Device: ${device}\tInode: ${st.ino}\tLinks: ${st.nlink}${st.rdev ? `\tDevice type: ${st.rdev.major},${st.rdev.minor}` : ''}`,
    `Access: (${(st.mode & 0o7777).toString(8).padStart(4, '0')}/${modeString(st.type, st.mode)})  Uid: ${st.uid}  Gid: ${st.gid}`,
    `Access: ${when(st.atime)}`,
    `Modify: ${when(st.mtime)}`,
    `Change: ${when(st.ctime)}`,
    ` Birth: ${when(st.crtime)}`,
  ];
  if (st.dtime) lines.push(`Delete: ${when(st.dtime)}`);
  for (const [name, value] of Object.entries(xattrs)) lines.push(` Xattr: ${displayName(name)}=0s${value}`);
  return `${lines.join('\n')}\n`;
}

function statJson(path: string, canonical: string, device: string, st: FileStat, target: string | undefined, xattrs: Record<string, string>): object {
  return {
    path,
    canonicalPath: canonical,
    device,
    ino: st.ino,
    type: st.type,
    mode: st.mode & 0o7777,
    modeString: modeString(st.type, st.mode),
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    blocks: st.blocks,
    ...(st.rdev ? { rdev: st.rdev } : {}),
    atime: timestampJson(st.atime),
    mtime: timestampJson(st.mtime),
    ctime: timestampJson(st.ctime),
    crtime: st.crtime ? timestampJson(st.crtime) : null,
    ...(target !== undefined ? { target } : {}),
    xattrs,
  };
}
