/**
 * QEMU openers in iotest 153's three modes, and the permission sets that make
 * our acquire() the same opener: read-write, read-only, read-only with
 * force-share (-U).
 */
import { execa } from 'execa';
import type { LockRequest, PermissionName } from '@guestlens/locking';
import type { Format } from './images.ts';

export type OpenerMode = 'rw' | 'ro' | 'force-share';
export const OPENER_MODES: OpenerMode[] = ['rw', 'ro', 'force-share'];

export const QEMU_IO_FLAGS: Record<OpenerMode, string[]> = { rw: [], ro: ['-r'], 'force-share': ['-r', '-U'] };
export const HOLDER_OF_MODE = { rw: 'qemu-io', ro: 'qemu-io -r', 'force-share': 'qemu-io -r -U' } as const;

const ALL: PermissionName[] = ['consistent read', 'write', 'write unchanged', 'resize'];

/** What qemu-io asks of the file node in each mode (the bytes of spec/qemu-locking.md's table). */
export function equivalentRequest(mode: OpenerMode, format: Format): LockRequest {
  if (mode === 'force-share') return { perm: ['consistent read'], shared: ALL };
  if (format === 'qcow2') {
    return mode === 'rw'
      ? { perm: ['consistent read', 'write', 'resize'], shared: ['consistent read', 'write unchanged'] }
      : { perm: ['consistent read'], shared: ['consistent read', 'write unchanged'] };
  }
  return mode === 'rw' ? { perm: ['consistent read', 'write'], shared: ALL } : { perm: ['consistent read'], shared: ALL };
}

export interface ToolResult {
  exitCode: number;
  stderr: string;
  stdout: string;
}

export async function tool(file: string, args: string[]): Promise<ToolResult> {
  const r = await execa(file, args, { reject: false, stripFinalNewline: false, timeout: 60000 });
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr), stdout: String(r.stdout) };
}

/** Open and close the image with qemu-io in `mode`. */
export function qemuIoOpen(mode: OpenerMode, image: string, format: Format): Promise<ToolResult> {
  return tool('qemu-io', [...QEMU_IO_FLAGS[mode], '-f', format, '-c', 'quit', image]);
}
