/**
 * Backing names as QEMU resolves them (relative, absolute, file:, json: with
 * nested or dotted keys and single quotes, raw windows), the precedence of
 * the backing-format extension over the JSON "driver", external data files,
 * features that must be refused by name, and the caller's backing policy.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { imageChain, openImage, Qcow2Error, Qcow2Image, type ReferencedFile } from '../../src/index.ts';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { sh } from '../../../../test/support/run.ts';
import { assertMatchesQemu, makeRaw, MiB, qemuImg, qemuIo } from '../support/qemu.ts';
import { EXT_BACKING_FORMAT, EXT_FEATURE_TABLE, findExtension, patch, readU64, writeU32, writeU64 } from '../support/patch.ts';

async function rejects(promise: Promise<unknown>, check: (err: Qcow2Error) => void): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof Qcow2Error, `expected a Qcow2Error, got ${String(err)}`);
    assert.equal(err.userFacing, true);
    check(err);
    return true;
  });
}

describe('qcow2-js backing chains, names and features', function () {
  this.timeout(120_000);
  let dir: string;
  let qcowBase: string;
  let rawBase: string;

  before(async () => {
    dir = scratchDir('chain');
    rawBase = join(dir, 'base.raw');
    await makeRaw(rawBase, 6 * MiB, [[0, 6 * MiB]], 3);
    qcowBase = join(dir, 'base.qcow2');
    await qemuImg(['convert', '-q', '-O', 'qcow2', rawBase, qcowBase]);
    await qemuIo(qcowBase, ['write -P 0x99 1M 64k']);
  });

  async function overlayOver(name: string, backing: string, format: string, size = '8M'): Promise<string> {
    const image = join(dir, name);
    await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', format, '-b', backing, image, size]);
    await qemuIo(image, ['write -P 0x42 2M 100k']);
    return image;
  }

  describe('json: backing names', () => {
    it('reads the nested form the overlay package writes (locking off)', async () => {
      const json = `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: qcowBase, locking: 'off' } })}`;
      const image = await overlayOver('json-nested.qcow2', json, 'qcow2');
      await assertMatchesQemu(image, [image, qcowBase]);
      const top = await openImage(image);
      assert.deepEqual(imageChain(top).map((l) => l.name), [image, qcowBase]);
      await top.close();
    });

    it('reads flattened dotted keys in single-quoted strings', async () => {
      const json = `json:{'driver':'qcow2','file.driver':'file','file.filename':'${qcowBase}','file.locking':'off'}`;
      const image = await overlayOver('json-dotted.qcow2', json, 'qcow2');
      await assertMatchesQemu(image, [image, qcowBase]);
    });

    it('lets the backing-format extension win over the JSON driver (-F raw over a qcow2 named with "driver":"qcow2")', async () => {
      const json = `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: qcowBase } })}`;
      const image = await overlayOver('json-precedence.qcow2', json, 'raw');
      await assertMatchesQemu(image, [image, qcowBase]);
      const top = (await openImage(image)) as Qcow2Image;
      assert.equal(top.backing?.constructor.name, 'RawImage', 'the qcow2 file is read raw, as QEMU does');
      // Its first bytes are the qcow2 magic of the file below, read raw.
      assert.equal((await top.read(0, 4)).toString('latin1'), 'QFI\xfb');
      await top.close();
    });

    it('uses the JSON driver when the image has no backing-format extension', async () => {
      const json = `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: qcowBase } })}`;
      const image = await overlayOver('json-noformat.qcow2', json, 'raw');
      // Turn the backing-format extension into an unknown one, which QEMU and we ignore.
      const ext = await findExtension(image, EXT_BACKING_FORMAT);
      assert.ok(ext !== undefined);
      await writeU32(image, ext, 0x12345678);
      await assertMatchesQemu(image, [image, qcowBase]);
      const top = (await openImage(image)) as Qcow2Image;
      assert.ok(top.backing instanceof Qcow2Image);
      await top.close();
    });

    it('reads a raw window (offset, size) of the file below', async () => {
      const json = `json:${JSON.stringify({ driver: 'raw', offset: MiB, size: 3 * MiB, file: { driver: 'file', filename: rawBase } })}`;
      const image = await overlayOver('json-raw-window.qcow2', json, 'raw', '5M');
      await assertMatchesQemu(image, [image, rawBase]);
    });

    it('refuses network protocols and node references by name', async () => {
      for (const [name, backing] of [
        ['nbd-url.qcow2', 'nbd://127.0.0.1:10809/disk'],
        ['nbd-json.qcow2', `json:${JSON.stringify({ driver: 'raw', file: { driver: 'nbd', server: { type: 'unix', path: '/nonexistent.sock' } } })}`],
        ['node-ref.qcow2', `json:${JSON.stringify({ driver: 'qcow2', file: 'some-node' })}`],
      ]) {
        const image = join(dir, name);
        await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'raw', '-b', backing, image, '1M']);
        await rejects(openImage(image), (err) => {
          assert.equal(err.kind, 'unsupported');
          assert.ok(err.message.startsWith(`${image}: `), err.message);
          assert.match(err.message, /nbd|block node/);
        });
      }
    });
  });

  describe('plain backing names', () => {
    it('resolves a relative name against the directory of the image that names it, not the working directory', async () => {
      const sub = join(dir, 'sub');
      await mkdir(sub, { recursive: true });
      await copyFile(rawBase, join(sub, 'disk.raw'));
      const image = join(sub, 'top.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', 'disk.raw', image]);
      assert.notEqual(process.cwd(), sub);
      await assertMatchesQemu(image, [image, join(sub, 'disk.raw')]);
    });

    it('reads zeros past the end of a shorter raw backing file', async () => {
      const image = await overlayOver('longer.qcow2', rawBase, 'raw', '9M');
      await assertMatchesQemu(image, [image, rawBase]);
      const top = await openImage(image);
      assert.ok((await top.read(7 * MiB, MiB)).equals(Buffer.alloc(MiB)));
      assert.equal((await top.extent(7 * MiB, MiB)).kind, 'zero');
      await top.close();
    });

    it('names a missing backing file, and the image that names it', async () => {
      const image = join(dir, 'missing.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-F', 'qcow2', '-b', 'nowhere.qcow2', image, '1M']);
      await rejects(openImage(image), (err) => {
        assert.equal(err.kind, 'chain');
        assert.match(err.message, new RegExp(`^${image}: cannot open its backing file "nowhere.qcow2" \\(${join(dir, 'nowhere.qcow2')}\\): ENOENT`));
      });
    });
  });

  describe('the backing policy', () => {
    it('"none" refuses an image with a backing file; "allow" reads it', async () => {
      const image = await overlayOver('policy.qcow2', qcowBase, 'qcow2');
      await rejects(openImage(image, { backingPolicy: 'none' }), (err) => assert.match(err.message, /backing policy is "none"/));
      await (await openImage(image, { backingPolicy: 'allow' })).close();
    });

    it('"same-dir" refuses a backing file outside the top image\'s directory and follows one inside', async () => {
      const other = scratchDir('elsewhere');
      const outside = join(other, 'outside.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', qcowBase, outside]);
      await rejects(openImage(outside, { backingPolicy: 'same-dir' }), (err) => {
        assert.match(err.message, /outside the image's directory/);
        assert.ok(err.message.includes(qcowBase));
      });
      const inside = await overlayOver('inside.qcow2', 'base.qcow2', 'qcow2');
      await (await openImage(inside, { backingPolicy: 'same-dir' })).close();
    });

    it('calls a policy function with every file before it is opened; a throw refuses it', async () => {
      const image = await overlayOver('policy-fn.qcow2', qcowBase, 'qcow2');
      const seen: ReferencedFile[] = [];
      await (await openImage(image, { backingPolicy: (f) => void seen.push(f) })).close();
      assert.deepEqual(seen, [{ kind: 'backing', image, name: qcowBase, path: qcowBase, format: 'qcow2' }]);
      await assert.rejects(
        openImage(image, {
          backingPolicy: () => {
            throw new Error('not this one');
          },
        }),
        /not this one/,
      );
    });
  });

  describe('external data files', () => {
    for (const raw of [false, true]) {
      it(`data_file_raw=${raw ? 'on' : 'off'}: refused by name unless allowed, then read like QEMU`, async () => {
        const image = join(dir, `datafile-${raw}.qcow2`);
        const data = join(dir, `datafile-${raw}.raw`);
        await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${data},data_file_raw=${raw ? 'on' : 'off'}`, image, '4M']);
        await qemuIo(image, ['write -P 0x61 0 64k', 'write -P 0x62 1000000 300000', 'write -z 2M 64k']);
        await rejects(openImage(image), (err) => {
          assert.equal(err.kind, 'chain');
          assert.match(err.message, new RegExp(`external data file "${data}"`));
          assert.match(err.message, /allow/);
        });
        await assertMatchesQemu(image, [image, data], { allowExternalDataFile: true });
      });
    }

    it('resolves a relative data file name against the working directory, as QEMU does (not the image directory)', async () => {
      const image = join(dir, 'datafile-relative.qcow2');
      await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=datafile-relative.raw', image, '1M'], { cwd: dir });
      assert.notEqual(process.cwd(), dir);
      await rejects(openImage(image, { allowExternalDataFile: true }), (err) => {
        assert.match(err.message, new RegExp(`cannot open its external data file "datafile-relative.raw" \\(${join(process.cwd(), 'datafile-relative.raw')}\\): ENOENT`));
      });
      await assert.rejects(qemuImg(['convert', '-O', 'raw', image, '/dev/null']), /Could not open 'datafile-relative.raw'/);
    });
  });

  /**
   * qemu-img times its LUKS key derivation with getrusage(); on a loaded machine that can fail
   * ("Unable to get accurate CPU usage"). Try again; as a last resort mark a plain image's
   * crypt_method (the field the reader refuses by), and say so.
   */
  async function createEncrypted(image: string, format: string): Promise<void> {
    let last: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await qemuImg(['create', '-q', '-f', 'qcow2', '--object', 'secret,id=sec0,data=abc', '-o', `encrypt.format=${format},encrypt.key-secret=sec0`, image, '1M']);
        return;
      } catch (err) {
        last = err;
        if (!/Unable to get accurate CPU usage/.test(String(err))) throw err;
      }
    }
    console.log(`      (qemu-img could not create an encrypted image here: ${String(last).split('\n')[1] ?? last}; marking crypt_method in a plain one)`);
    await qemuImg(['create', '-q', '-f', 'qcow2', image, '1M']);
    const method = Buffer.alloc(4);
    method.writeUInt32BE(format === 'luks' ? 2 : 1);
    await patch(image, 32, method);
  }

  describe('features', () => {
    it('refuses LUKS and AES encryption by name', async () => {
      for (const format of ['luks', 'aes']) {
        const image = join(dir, `enc-${format}.qcow2`);
        await createEncrypted(image, format);
        await guardImages([image], () =>
          rejects(openImage(image), (err) => {
            assert.equal(err.kind, 'unsupported');
            assert.match(err.message, new RegExp(`^${image}: is ${format === 'luks' ? 'LUKS' : 'AES'}-encrypted`));
            assert.match(err.message, /offset 32/);
          }),
        );
      }
    });

    it('refuses unknown incompatible features, named from the image\'s feature-name table', async () => {
      const image = join(dir, 'unknown-feature.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', image, '1M']);
      // Rename table entry "dirty bit" (incompatible bit 0) to bit 9 and set bit 9, and also bit 40 which has no name.
      const table = await findExtension(image, EXT_FEATURE_TABLE);
      assert.ok(table !== undefined);
      await patch(image, table + 8 + 1, Buffer.from([9]));
      await writeU64(image, 72, (await readU64(image, 72)) | (1n << 9n) | (1n << 40n));
      await rejects(openImage(image), (err) => {
        assert.equal(err.kind, 'unsupported');
        assert.match(err.message, /incompatible feature\(s\) guestlens cannot read: dirty bit, unknown incompatible feature bit 40/);
      });
      // QEMU refuses it too.
      await assert.rejects(qemuImg(['info', image]), /Unsupported qcow2 feature\(s\): dirty bit/);
    });

    it('reads dirty, lazy-refcount and corrupt-flagged images normally', async () => {
      const image = join(dir, 'dirty.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', image, '4M']);
      await qemuIo(image, ['write -P 0x71 0 1M', 'write -P 0x72 3M 12345']);
      await writeU64(image, 72, (await readU64(image, 72)) | 1n | 2n);
      await assertMatchesQemu(image, [image]);
      const top = (await openImage(image)) as Qcow2Image;
      assert.deepEqual([top.dirty, top.corrupt, top.lazyRefcounts], [true, true, true]);
      await top.close();
    });
  });

  describe('refresh()', () => {
    it('drops cached metadata: data written after opening is seen after refresh', async () => {
      const image = join(dir, 'refresh.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', image, '4M']);
      await qemuIo(image, ['write -P 0x01 0 64k']);
      const top = await openImage(image);
      try {
        assert.equal((await top.read(MiB, 1))[0], 0);
        await qemuIo(image, ['write -P 0x02 1M 64k', 'write -P 0x03 0 512']);
        await top.refresh();
        assert.equal((await top.read(MiB, 1))[0], 2);
        assert.equal((await top.read(0, 1))[0], 3);
      } finally {
        await top.close();
      }
    });
  });
});
