/**
 * ntfs-3g as the oracle for NTFS (the kernel here has no ntfs3): mkntfs to
 * make a volume in a file, an ntfs-3g FUSE mount to fill it (read-write) or
 * to read it as libguestfs would (read-only), `stat -f` for statfs.
 *
 * ntfs-3g runs in the foreground (-o no_detach) as a tracked process, so unmounting
 * waits for it to exit: only then has everything it wrote reached the image
 * (a FUSE mount of a plain file is not synchronous on umount).
 */
import { execa } from 'execa';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { scratchDir } from './scratch.ts';
import { sh } from './run.ts';
import { startTracked, stop, waitFor, type Tracked } from './processes.ts';

export interface Ntfs3gMount {
  dir: string;
  unmount(): Promise<void>;
}

async function mounted(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === dir);
}

/** Whether ntfs-3g can be used here (FUSE present, root), else why not. */
export async function ntfs3gUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not running as root (FUSE mounts need it)';
  for (const tool of ['ntfs-3g', 'mkntfs', 'ntfsinfo', 'setfattr']) {
    const r = await execa('which', [tool], { reject: false });
    if (r.exitCode !== 0) return `${tool} is not installed (Debian packages ntfs-3g, attr; scripts/install-deps.sh installs them)`;
  }
  const fuse = await execa('test', ['-c', '/dev/fuse'], { reject: false });
  if (fuse.exitCode !== 0) return '/dev/fuse is missing';
  return undefined;
}

/** Mount `image` with ntfs-3g (read-only unless `readWrite`), extra -o options in `options`. */
export async function mountNtfs3g(image: string, opts: { readWrite?: boolean; options?: string[] } = {}): Promise<Ntfs3gMount> {
  const dir = scratchDir('ntfs3g-mount');
  mkdirSync(dir, { recursive: true });
  const o = [opts.readWrite ? 'rw' : 'ro', 'no_detach', ...(opts.options ?? [])].join(',');
  const child: Tracked = startTracked('ntfs-3g', ['-o', o, image, dir]);
  try {
    await waitFor(`ntfs-3g to mount ${image}`, async () => {
      if (child.exitCode !== null) throw new Error(`ntfs-3g exited (${child.exitCode}): ${(await child).stderr}`);
      return mounted(dir);
    }, 20000, 25);
  } catch (err) {
    await stop(child);
    throw err;
  }
  let done = false;
  return {
    dir,
    async unmount() {
      if (done) return;
      done = true;
      for (let attempt = 0; ; attempt++) {
        const r = await execa('umount', [dir], { reject: false });
        if (r.exitCode === 0 || attempt >= 20) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      const timer = setTimeout(() => void stop(child), 20000);
      await child;
      clearTimeout(timer);
    },
  };
}

/** Mount, run `fn`, always unmount. */
export async function withNtfs3g<T>(image: string, opts: { readWrite?: boolean; options?: string[] }, fn: (dir: string) => Promise<T>): Promise<T> {
  const m = await mountNtfs3g(image, opts);
  try {
    return await fn(m.dir);
  } finally {
    await m.unmount();
  }
}

/** What a read-write ntfs-3g mount says when it refuses (hibernated, unclean...), or undefined when it mounts. */
export async function ntfs3gRefusal(image: string, options: string[] = []): Promise<string | undefined> {
  const dir = scratchDir('ntfs3g-try');
  mkdirSync(dir, { recursive: true });
  // Without remove_hiberfile and with no fallback, ntfs-3g explains and exits non-zero.
  const r = await execa('ntfs-3g', ['-o', ['rw', ...options].join(','), image, dir], { reject: false });
  if (r.exitCode === 0) {
    const ro = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === dir);
    await execa('umount', [dir], { reject: false });
    await new Promise((res) => setTimeout(res, 300));
    // It may have fallen back to read-only: that is a refusal of read-write too.
    if (ro && / ro[, ]/.test(ro)) return `${r.stderr}${r.stdout}`.trim() || 'fell back to read-only';
    return undefined;
  }
  return `${r.stderr}${r.stdout}`.trim();
}

export interface MkntfsOptions {
  sizeMiB: number;
  label?: string;
  clusterSize?: number;
  /** Extra mkntfs arguments. */
  args?: string[];
}

/** A fresh NTFS volume in a sparse file. */
export async function mkntfs(path: string, o: MkntfsOptions): Promise<string> {
  await sh('truncate', ['-s', `${o.sizeMiB}M`, path]);
  const args = ['-Q', '-F', '-q'];
  if (o.label) args.push('-L', o.label);
  if (o.clusterSize) args.push('-c', String(o.clusterSize));
  await sh('mkntfs', [...args, ...(o.args ?? []), path]);
  return path;
}

/** `stat -f` of a mounted directory. */
export async function statfsOf(dir: string): Promise<{ bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; namelen: number }> {
  const out = await sh('stat', ['-f', '-c', '%s %b %f %a %c %d %l', dir]);
  const [bsize, blocks, bfree, bavail, files, ffree, namelen] = out.trim().split(/\s+/).map(Number);
  return { bsize, blocks, bfree, bavail, files, ffree, namelen };
}

/** ntfs-3g's numbers for a volume in a file: mount read-only, stat -f, unmount. */
export async function ntfs3gStatfs(image: string): Promise<Awaited<ReturnType<typeof statfsOf>>> {
  return withNtfs3g(image, {}, statfsOf);
}

/** `ntfsinfo -m` as key/value pairs ("Volume Name", "Free Clusters", ...). */
export async function ntfsinfoVolume(image: string): Promise<Map<string, string>> {
  const out = await sh('ntfsinfo', ['-m', '-f', image]);
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && line.startsWith('\t')) {
      const k = line.slice(1, i).trim();
      if (!m.has(k)) m.set(k, line.slice(i + 1).trim());
    }
  }
  return m;
}
