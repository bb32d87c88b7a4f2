/**
 * A live image: qemu-storage-daemon holds a qcow2 read-write and serves it
 * over NBD (unix socket) while qemu-io writes through the export. Our reader
 * opens the same file read-only, sees the new data after refresh(), and while
 * the writes go on, every read either succeeds or fails with a typed error.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { openImage } from '../../../src/index.ts';
import { startTracked, stop, waitFor } from '../../../../../test/support/processes.ts';
import { sh } from '../../../../../test/support/run.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { assertSameBytes, makeRaw, MiB, prng, qemuImg } from '../../support/qemu.ts';

const SIZE = 48 * MiB;

describe('qcow2-js on a live image written through qemu-storage-daemon', function () {
  this.timeout(180_000);

  it('sees new data after refresh(), never crashes while writes happen, and ends equal to the daemon\'s view', async () => {
    const dir = scratchDir('live');
    const source = join(dir, 'source.raw');
    await makeRaw(source, SIZE, [[0, 8 * MiB], [20 * MiB, 4 * MiB]], 11);
    const image = join(dir, 'live.qcow2');
    await qemuImg(['convert', '-q', '-O', 'qcow2', '-o', 'cluster_size=65536', source, image]);
    const socket = join(dir, 'nbd.sock');
    const daemon = startTracked('qemu-storage-daemon', [
      '--blockdev', `driver=file,node-name=file0,filename=${image}`,
      '--blockdev', 'driver=qcow2,node-name=disk,file=file0',
      '--nbd-server', `addr.type=unix,addr.path=${socket}`,
      '--export', 'type=nbd,id=export0,node-name=disk,name=disk,writable=on',
    ]);
    await waitFor('the NBD socket of qemu-storage-daemon', () => existsSync(socket));
    const url = `nbd+unix:///disk?socket=${socket}`;
    const qemuIo = async (commands: string[]) => {
      const r = await execa('qemu-io', ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), url], { reject: false });
      assert.equal(r.exitCode, 0, `qemu-io ${commands.join('; ')}: ${r.stderr}${r.stdout}`);
    };

    const reader = await openImage(image);
    try {
      // New clusters written and flushed by the daemon appear after refresh().
      await qemuIo(['write -P 0x5a 30M 64k', 'write -P 0x5b 1000000 3000', 'flush']);
      await reader.refresh();
      assert.ok((await reader.read(30 * MiB, 65536)).equals(Buffer.alloc(65536, 0x5a)));
      assert.ok((await reader.read(1000000, 3000)).equals(Buffer.alloc(3000, 0x5b)));

      // Writers and a polling reader at the same time.
      const rnd = prng(4242);
      let writing = true;
      const writers = (async () => {
        try {
          for (let round = 0; round < 40; round++) {
            const commands: string[] = [];
            for (let i = 0; i < 6; i++) {
              const offset = rnd() % (SIZE - 300000);
              const length = 1 + (rnd() % 250000);
              const op = rnd() % 5;
              if (op === 0) commands.push(`write -z ${offset} ${length}`);
              else if (op === 1) commands.push(`discard ${offset - (offset % 65536)} 65536`);
              else commands.push(`write -P 0x${(rnd() & 0xff).toString(16)} ${offset} ${length}`);
            }
            if (round % 3 === 0) commands.push('flush');
            await qemuIo(commands);
          }
        } finally {
          writing = false;
        }
      })();
      let polls = 0;
      let typedFailures = 0;
      while (writing) {
        try {
          await reader.refresh();
          for (let offset = 0; offset < reader.size; offset += 4 * MiB) await reader.read(offset, Math.min(4 * MiB, reader.size - offset));
          for (let offset = 0, n = 0; offset < reader.size && n < 100000; n++) offset += (await reader.extent(offset, reader.size - offset)).length;
          polls++;
        } catch (err) {
          assert.ok(err instanceof Error && (err as { userFacing?: unknown }).userFacing === true, `untyped error while the image was being written: ${err instanceof Error ? err.stack : String(err)}`);
          typedFailures++;
        }
      }
      await writers;
      assert.ok(polls > 0, `the reader completed no pass (${typedFailures} typed failures)`);
      console.log(`      ${polls} passes over the live image, ${typedFailures} typed failures while it was written`);

      // Once the daemon has flushed, the file says what the daemon says.
      await qemuIo(['flush']);
      await reader.refresh();
      const ref = join(dir, 'daemon-view.raw');
      await sh('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, ref]);
      await assertSameBytes(reader, ref, `${image} (live)`);
    } finally {
      await reader.close();
      await stop(daemon);
    }
  });
});
