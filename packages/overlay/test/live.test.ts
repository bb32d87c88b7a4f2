import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { probe } from '@guestlens/locking';
import { createOverlay } from '@guestlens/overlay';
import { scratchDir } from '../../../test/support/scratch.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { startTracked, waitFor, type Tracked } from '../../../test/support/processes.ts';
import { sh } from '../../../test/support/run.ts';
import { assertNoOverlayDirs, assertOverlayReads, MiB, qemuImgCreate, qemuIoRead, qemuIoWrite } from './fixtures.ts';

/**
 * The lock records a process holds on one file, from /proc/PID/fdinfo (the only
 * place an OFD lock's owner shows), without the per-file record numbers.
 */
function locksHeldBy(pid: number, path: string): string[] {
  const st = statSync(path);
  const inode = `:${st.ino} `;
  const lines: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (line.startsWith('lock:') && line.includes(inode)) lines.push(`fd ${fd}: ${line.replace(/^lock:\s*\d+:\s*/, '').replace(/\s+/g, ' ')}`);
    }
  }
  return lines.sort();
}

/** What the spec's table says a writable qemu-storage-daemon export holds. */
const DAEMON_BYTES: Record<string, number[]> = { qcow2: [100, 101, 103, 201, 203], raw: [100, 101, 203] };

describe('overlay: reading an image a running QEMU holds read-write', () => {
  afterEach(assertNoOverlayDirs);

  for (const format of ['qcow2', 'raw'] as const) {
    it(`${format}: qemu-storage-daemon with a writable export keeps running and keeps its locks while qemu-io reads the overlay`, async () => {
      const dir = scratchDir(`live-${format}`);
      const image = join(dir, `disk.${format}`);
      if (format === 'raw') writeFileSync(image, Buffer.alloc(4 * MiB));
      else await qemuImgCreate(image, 'qcow2', '4M');
      await qemuIoWrite(image, format, 0xa1, 0, 65536);
      const socket = join(dir, 'nbd.sock');
      const daemon: Tracked = startTracked('qemu-storage-daemon', [
        '--blockdev', `driver=file,node-name=file0,filename=${image}`,
        '--blockdev', `driver=${format},node-name=disk0,file=file0`,
        '--nbd-server', `addr.type=unix,addr.path=${socket}`,
        '--export', 'type=nbd,id=exp0,node-name=disk0,writable=on',
      ]);
      await waitFor('qemu-storage-daemon to serve and lock the image', () => existsSync(socket) && locksHeldBy(daemon.pid, image).length > 0);

      const locksBefore = locksHeldBy(daemon.pid, image);
      const probeBefore = await probe(image);
      assert.deepEqual(probeBefore.heldBytes, DAEMON_BYTES[format], JSON.stringify(probeBefore.heldBytes));
      assert.deepEqual([...new Set(probeBefore.holders.map((h) => h.pid))], [daemon.pid]);
      assert.ok(probeBefore.uses.includes('write'), 'the daemon holds the image for writing');

      // The control: the same json: backing without "locking":"off" gives an overlay QEMU cannot open.
      // (qcow2 only: a raw backing file opened read-only takes byte 100 alone and shares write, so it
      // does not conflict with the writer; the qcow2 driver refuses to share write on its file.)
      if (format === 'qcow2') {
        const control = join(dir, 'control.qcow2');
        const lockingOn = `json:${JSON.stringify({ driver: format, file: { driver: 'file', filename: image } })}`;
        await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', format, '-b', lockingOn, control]);
        const refused = await qemuIoRead(control, 'read 0 64k');
        assert.notEqual(refused.exitCode, 0, 'the control overlay must not open');
        assert.match(refused.stderr, /Could not open backing file: Failed to get shared "write" lock/);
        assert.match(refused.stderr, /Is another process using the image \[.*disk\.qcow2\]\?/);
        // And QEMU cannot read the image directly either.
        const direct = await execa('qemu-io', ['-r', '-f', 'qcow2', '-c', 'read 0 64k', image], { reject: false });
        assert.match(String(direct.stderr), /Failed to get shared "write" lock/);
      }

      await guardImages([image], async () => {
        const overlay = await createOverlay(image);
        try {
          assert.equal(overlay.format, format);
          await assertOverlayReads(overlay.path, 'read 0 64k');
          await assertOverlayReads(overlay.path, 'read -P 0xa1 0 64k');
          // A reader holding the overlay open does not disturb the daemon either.
          const reader = startTracked('qemu-io', ['-r', '-f', 'qcow2', overlay.path], { input: true });
          reader.stdin?.write('read -P 0xa1 0 64k\n');
          await waitFor('qemu-io to read through the overlay', () => readerOutputSeen(reader));
          assert.deepEqual(locksHeldBy(daemon.pid, image), locksBefore);
          reader.stdin?.end('quit\n');
          const done = await reader;
          assert.equal(done.exitCode, 0, String(done.stderr));
          assert.doesNotMatch(String(done.stdout), /verification failed/i);
        } finally {
          await overlay.close();
        }
      });

      assert.equal(daemon.exitCode, null, 'the daemon is still running');
      assert.deepEqual(locksHeldBy(daemon.pid, image), locksBefore, 'the daemon keeps exactly its locks');
      const probeAfter = await probe(image);
      assert.deepEqual(probeAfter.heldBytes, probeBefore.heldBytes);
      assert.deepEqual(probeAfter.holders, probeBefore.holders);

      // Live: what the VM side writes now shows through a new overlay.
      const written = await execa('qemu-io', ['-f', 'raw', '-c', 'write -P 0xcd 0 64k', `nbd+unix:///disk0?socket=${socket}`], { reject: false });
      assert.equal(written.exitCode, 0, String(written.stderr));
      const again = await createOverlay(image);
      try {
        await assertOverlayReads(again.path, 'read -P 0xcd 0 64k');
      } finally {
        await again.close();
      }
      assert.equal(daemon.exitCode, null, 'the daemon is still running');
    });
  }
});

/** execa buffers output until exit; poll the child's stdout stream for qemu-io's answer instead. */
const seen = new WeakMap<Tracked, string>();
function readerOutputSeen(reader: Tracked): boolean {
  if (!seen.has(reader)) {
    seen.set(reader, '');
    reader.stdout?.on('data', (chunk: Buffer) => seen.set(reader, (seen.get(reader) ?? '') + chunk.toString()));
  }
  return /read 65536\/65536 bytes/.test(seen.get(reader) ?? '');
}
