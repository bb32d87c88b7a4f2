/**
 * A tiny in-memory Filesystem: enough of the driver interface to exercise
 * path resolution and the commands above the drivers exactly (every corner
 * of symlinks, loops, hostile names) without an image.
 */
import type { DirEntry, FileStat, FileType, Filesystem, StatFs } from '../../packages/inspect/src/filesystems/filesystem.ts';
import { MemorySource } from './memorySource.ts';

export interface MemNode {
  type: FileType;
  mode: number;
  parent: number;
  children?: Map<string, number>;
  data?: Buffer;
  /** A file whose bytes are computed (a huge sparse file without the memory). */
  virtualSize?: number;
  target?: string;
}

/** A tiny Filesystem: enough of the driver interface to exercise the resolver exactly. */
export class MemFs implements Filesystem {
  readonly type = 'memfs';
  readonly label = 'mem';
  readonly uuid = undefined;
  readonly rootIno = 2;
  readonly source = new MemorySource(Buffer.alloc(0), 'mem.img', 0);
  readonly nodes = new Map<number, MemNode>();
  lookups = 0;
  reads: number[] = [];
  private nextIno = 3;

  constructor() {
    this.nodes.set(2, { type: 'directory', mode: 0o40755, parent: 2, children: new Map() });
  }

  private at(path: string): number {
    let ino = this.rootIno;
    for (const part of path.split('/').filter(Boolean)) ino = this.nodes.get(ino)!.children!.get(part)!;
    return ino;
  }

  add(path: string, node: Omit<MemNode, 'parent'>): number {
    const slash = path.lastIndexOf('/');
    const parent = this.at(path.slice(0, slash));
    const ino = this.nextIno++;
    this.nodes.set(ino, { ...node, parent, children: node.type === 'directory' ? new Map() : undefined });
    this.nodes.get(parent)!.children!.set(path.slice(slash + 1), ino);
    return ino;
  }

  dir(path: string): void {
    this.add(path, { type: 'directory', mode: 0o40755 });
  }

  file(path: string, content: string | Buffer): void {
    this.add(path, { type: 'file', mode: 0o100644, data: Buffer.from(content) });
  }

  link(path: string, target: string): void {
    this.add(path, { type: 'symlink', mode: 0o120777, target });
  }

  async statfs(): Promise<StatFs> {
    return { bsize: 4096, blocks: 100, bfree: 50, bavail: 40, files: 10, ffree: 5, namelen: 255, exact: true };
  }

  async getattr(ino: number): Promise<FileStat> {
    const n = this.nodes.get(ino);
    if (!n) throw new Error(`no inode ${ino}`);
    const t = { sec: 0, nsec: 0 };
    const size = n.virtualSize ?? n.data?.length ?? (n.target !== undefined ? Buffer.byteLength(n.target) : 4096);
    return { ino, type: n.type, mode: n.mode, nlink: 1, uid: 0, gid: 0, size, blocks: 0, atime: t, mtime: t, ctime: t };
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    const n = this.nodes.get(ino)!;
    if (n.type !== 'directory') throw new Error('readdir of a non-directory reached the driver');
    return [...n.children!].map(([name, child]) => ({ name, rawName: Buffer.from(name), ino: child, type: this.nodes.get(child)!.type }));
  }

  async lookup(dirIno: number, name: string): Promise<number | undefined> {
    this.lookups++;
    const n = this.nodes.get(dirIno)!;
    if (n.type !== 'directory') throw new Error('lookup in a non-directory reached the driver');
    if (name === '..') return n.parent;
    return n.children!.get(name);
  }

  async read(ino: number, offset: number, length: number): Promise<Buffer> {
    const n = this.nodes.get(ino)!;
    this.reads.push(length);
    if (n.virtualSize !== undefined) {
      const len = Math.max(0, Math.min(length, n.virtualSize - offset));
      const out = Buffer.alloc(len);
      for (let i = 0; i < len; i++) out[i] = (offset + i) & 0xff;
      return out;
    }
    return n.data!.subarray(offset, offset + length);
  }

  async readlink(ino: number): Promise<string> {
    return this.nodes.get(ino)!.target!;
  }

  async refresh(): Promise<void> {}
}

