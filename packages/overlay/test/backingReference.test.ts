import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { backingJson, createOverlay, inspectChain, parseBackingReference } from '@guestlens/overlay';
import { scratchDir } from '../../../test/support/scratch.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { sh } from '../../../test/support/run.ts';
import { assertNoOverlayDirs, assertOverlayReads, qemuImgCreate, qemuIoWrite } from './fixtures.ts';

describe('overlay: the json: backing reference', () => {
  afterEach(assertNoOverlayDirs);

  it('is exactly the spec\'s string', () => {
    assert.equal(
      backingJson({ format: 'qcow2', filename: '/abs/img.qcow2' }),
      'json:{"driver":"qcow2","file":{"driver":"file","filename":"/abs/img.qcow2","locking":"off"}}',
    );
  });

  it('parses back what it writes, and classifies other backing names as QEMU reads them', () => {
    const nasty = '/a b,c"d\\e\nf/ü€/-x:y';
    assert.deepEqual(parseBackingReference(backingJson({ format: 'raw', filename: nasty })), {
      kind: 'json', path: nasty, format: 'raw', lockingOff: true, dataFile: undefined, blockDevice: false,
    });
    assert.deepEqual(parseBackingReference('base.qcow2'), { kind: 'path', path: 'base.qcow2' });
    assert.deepEqual(parseBackingReference('/x/a:b'), { kind: 'path', path: '/x/a:b' });
    assert.deepEqual(parseBackingReference('file:/x/y'), { kind: 'path', path: '/x/y' });
    assert.equal(parseBackingReference('nbd://host/export').kind, 'unsupported');
    assert.equal(parseBackingReference('http://example.com/disk').kind, 'unsupported');
    assert.equal(parseBackingReference('json:{"driver":"nbd","server":{"type":"unix","path":"/s"}}').kind, 'unsupported');
    assert.equal(parseBackingReference('json:{"driver":"qcow2","file":{"driver":"ssh","path":"/x"}}').kind, 'unsupported');
    assert.equal(parseBackingReference('json:{not json').kind, 'unsupported');
    assert.equal(parseBackingReference('json:{"driver":"raw","file":{"driver":"file","filename":"/x"},"backing":null}').kind, 'unsupported');
  });

  // Each name is a path component QEMU must receive intact through -b and the overlay header.
  const names: [string, string][] = [
    ['spaces', 'my disk image.qcow2'],
    ['commas (which -o would need doubled)', 'a,b,,c.qcow2'],
    ['double quotes', 'say "hi".qcow2'],
    ['backslashes', 'back\\slash\\.qcow2'],
    ['a newline', 'line\nbreak.qcow2'],
    ['non-ASCII', 'dïsk-ünïcødé-€-日本.qcow2'],
    ['a leading dash', '-f raw.qcow2'],
    ['a colon (QEMU protocol syntax)', 'nbd:evil.qcow2'],
    ['json: at the start', 'json:{}.qcow2'],
    ['tabs and control characters', 'tab\there\u0001.qcow2'],
  ];
  for (const [what, name] of names) {
    it(`works for a path with ${what}`, async () => {
      const dir = join(scratchDir('names'), 'sub dir, "quoted"');
      mkdirSync(dir);
      const image = join(dir, name);
      await qemuImgCreate(image, 'qcow2', '4M');
      await qemuIoWrite(image, 'qcow2', 0xa5, 0, 65536);
      await guardImages([image], async () => {
        const overlay = await createOverlay(image);
        try {
          assert.equal(overlay.format, 'qcow2');
          assert.equal(JSON.parse(overlay.backing.slice(5)).file.filename, image);
          // What qemu-img stored in the overlay header is our string, byte for byte.
          const info = JSON.parse(await sh('qemu-img', ['info', '-U', '-f', 'qcow2', '--output=json', overlay.path])) as Record<string, string>;
          assert.equal(info['backing-filename'], overlay.backing);
          assert.equal(info['backing-filename-format'], 'qcow2');
          await assertOverlayReads(overlay.path, 'read -P 0xa5 0 64k');
          const chain = await inspectChain(overlay.path);
          assert.equal(chain[1].filename, image);
          assert.equal(chain[1].lockingOff, true);
        } finally {
          await overlay.close();
        }
      });
    });
  }
});
