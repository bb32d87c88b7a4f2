/**
 * The VG text parser: the grammar's corners (comments, quoting, octal and
 * negative numbers, arrays without commas), its limits (depth, token length,
 * 64-bit numbers), and — with LVM as the oracle — that text LVM reads one
 * way reads the same way here: vgcfgrestore takes a hand-written odd but
 * valid text, vgcfgbackup writes back what LVM understood, and both texts
 * must give the same volume group.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigTextError, parseConfigText, type ConfigSection } from '../../../src/volumes/lvm/configText.ts';
import { readVolumeGroup } from '../../../src/volumes/lvm/vgMetadata.ts';
import { LIMITS } from '../../../src/volumes/lvm/layout.ts';
import { LvmFixture, lvmUnavailable } from '../../../../../test/support/lvm.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';

function value(root: ConfigSection, ...path: string[]): unknown {
  let node: ConfigSection = root;
  for (const key of path.slice(0, -1)) {
    const next = node.children.get(key);
    assert.ok(next && next.kind === 'section', `no section ${key}`);
    node = next;
  }
  const leaf = node.children.get(path[path.length - 1]);
  assert.ok(leaf && leaf.kind === 'value', `no value ${path.join('/')}`);
  return leaf.value;
}

function fails(text: string, pattern: RegExp): void {
  assert.throws(() => parseConfigText(text), (err: unknown) => err instanceof ConfigTextError && pattern.test(err.message));
}

describe('lvm: VG text parser', () => {
  it('reads sections, numbers, strings and arrays as libdm-config does', () => {
    const root = parseConfigText(
      [
        '# a comment',
        'vg0 { # trailing comment',
        '  seqno = 12',
        '  neg = -5',
        '  octal = 010',
        '  f = 1.5',
        '  s = "a \\"quoted\\" \\\\ string"',
        "  raw = 'no \\escapes'",
        '  bare = word',
        '  list = [ "a", 1 "b" , 2 ]',
        '  empty = []',
        '  "quoted key" = 1',
        '  inner { deeper { x = 1 } }',
        '}',
        'contents = "Text Format Volume Group"\0ignored after the NUL {',
      ].join('\n'),
    );
    assert.deepEqual(value(root, 'vg0', 'seqno'), { kind: 'int', value: 12n });
    assert.deepEqual(value(root, 'vg0', 'neg'), { kind: 'int', value: -5n });
    assert.deepEqual(value(root, 'vg0', 'octal'), { kind: 'int', value: 8n });
    assert.deepEqual(value(root, 'vg0', 'f'), { kind: 'float', value: 1.5 });
    assert.deepEqual(value(root, 'vg0', 's'), { kind: 'string', value: 'a "quoted" \\ string' });
    assert.deepEqual(value(root, 'vg0', 'raw'), { kind: 'string', value: 'no \\escapes' });
    assert.deepEqual(value(root, 'vg0', 'bare'), { kind: 'string', value: 'word' });
    assert.deepEqual(value(root, 'vg0', 'list'), {
      kind: 'array',
      items: [
        { kind: 'string', value: 'a' },
        { kind: 'int', value: 1n },
        { kind: 'string', value: 'b' },
        { kind: 'int', value: 2n },
      ],
    });
    assert.deepEqual(value(root, 'vg0', 'empty'), { kind: 'array', items: [] });
    assert.deepEqual(value(root, 'vg0', 'quoted key'), { kind: 'int', value: 1n });
    assert.deepEqual(value(root, 'vg0', 'inner', 'deeper', 'x'), { kind: 'int', value: 1n });
    assert.deepEqual(value(root, 'contents'), { kind: 'string', value: 'Text Format Volume Group' });
  });

  it('refuses broken text with the line and byte of the fault', () => {
    fails('a {\n b = 1\n', /section "a" \(line 1\) is never closed/);
    fails('a = "open', /line 1 .*never closed/);
    fails('}', /closes no section/);
    fails('a = 1\na = 2', /line 2 .*appears twice/);
    fails('a b', /"=" or "\{" was expected/);
    fails('a = [1, 2', /array that is never closed/);
    fails('a = ', /a value was expected/);
    fails('a = 099', /not an octal number/);
    fails('a = 9223372036854775808', /beyond 64 bits/);
    fails(`a = ${'9'.repeat(5000)}`, /beyond 64 bits/);
    fails('= 1', /a key was expected/);
  });

  it('bounds depth, token length and node count', () => {
    fails(`${'a{'.repeat(LIMITS.textDepth + 2)}${'}'.repeat(LIMITS.textDepth + 2)}`, /nested more than/);
    assert.doesNotThrow(() => parseConfigText(`${'a{'.repeat(LIMITS.textDepth)}${'}'.repeat(LIMITS.textDepth)}`));
    fails(`a = "${'x'.repeat(LIMITS.tokenLength + 1)}"`, /longer than/);
    fails(`a = ${'w'.repeat(LIMITS.tokenLength + 1)}`, /longer than/);
    // A million-item array is refused by the node limit in one pass, not by running out of memory.
    const big = `a = [${'1,'.repeat(LIMITS.textNodes + 1)}]`;
    fails(big, /more than \d+ entries/);
  });

  describe('against LVM (vgcfgrestore reads our odd text, vgcfgbackup writes what it understood)', function () {
    this.timeout(120000);
    let fixture: LvmFixture | undefined;
    let dir: string;

    before(async function () {
      const why = await lvmUnavailable();
      if (why) {
        console.log(`      (skipped: ${why})`);
        this.skip();
      }
      dir = scratchDir('lvm-text');
      const file = join(dir, 'pv.img');
      await sh('truncate', ['-s', '64M', file]);
      fixture = await LvmFixture.create('textvg', [{ file, offset: 0, size: 64 * 1024 * 1024 }]);
      await fixture.lvcreate(['-n', 'a', '-L', '8m', 'textvg']);
    });

    after(async () => {
      await fixture?.detach();
    });

    it('gives the same VG for octal numbers, comments, single quotes, missing commas and quoted keys', async () => {
      const normal = await fixture!.backup(join(dir, 'normal.txt'));
      const odd = normal
        .replace(/extent_count = (\d+)/, (_, n: string) => `extent_count = 0${Number(n).toString(8)}   # octal, as strtoll(base 0) reads it`)
        .replace(/status = \["READ", "WRITE", "VISIBLE"\]/, "status = ['READ' 'WRITE'\n'VISIBLE'] # no commas")
        .replace(/\n(\t*)segment_count = /, '\n$1"segment_count" = ');
      assert.notEqual(odd, normal);
      await fixture!.restore(join(dir, 'odd.txt'), () => odd);
      const understood = await fixture!.backup(join(dir, 'understood.txt'));
      const strip = (t: string) => {
        const vg = readVolumeGroup(parseConfigText(t), 'test');
        return { ...vg, seqno: 0, lvs: [...vg.lvs.values()].map((lv) => ({ ...lv, status: [...lv.status], flags: [...lv.flags] })), pvs: [...vg.pvs.values()], status: [...vg.status] };
      };
      assert.deepEqual(strip(odd), strip(understood));
      assert.deepEqual(strip(normal), strip(understood));
    });
  });
});
