/**
 * The follower's state machine on an in-memory filesystem, where every
 * change a guest can make to a log is one assignment: appends, partial
 * lines, zeros not yet written back, truncation, rotation, a file that
 * goes and comes back. What comes out is checked line by line.
 */
import assert from 'node:assert/strict';
import { FileTree, type MountTable } from '@guestlens/inspect';
import { MemFs } from '../../../test/support/memoryFilesystem.ts';
import { LineSplitter, lastLinesStart, lineStart, type Line } from '../../src/follow/lines.ts';
import { TailedFile, unwrittenZeros, type TailSink } from '../../src/follow/tailedFile.ts';

function setup() {
  const fs = new MemFs();
  fs.dir('/var');
  fs.file('/var/app.log', 'one\ntwo\nthree\n');
  const table: MountTable = { root: { fs, device: '/dev/sda' }, mountedAt: () => undefined };
  const tree = new FileTree(table);
  const out: { text: string; partial: boolean; offset: number; inode?: number }[] = [];
  const notices: string[] = [];
  const sink: TailSink = {
    lines: (f, ls: Line[]) => out.push(...ls.map((l) => ({ text: l.bytes.toString('latin1'), partial: l.partial, offset: l.offset, inode: f.inode }))),
    notice: (_f, m) => notices.push(m),
  };
  let now = 0;
  const clock = { zeroWaitMs: 10_000, now: () => now };
  const file = new TailedFile('/var/app.log', sink, clock);
  const node = (path = '/var/app.log') => fs.nodes.get(fs.nodes.get(fs.nodes.get(2)!.children!.get('var')!)!.children!.get(path.split('/').pop()!)!)!;
  const append = (s: string | Buffer, path?: string) => {
    const n = node(path);
    n.data = Buffer.concat([n.data!, Buffer.from(s)]);
  };
  const dir = () => fs.nodes.get(fs.nodes.get(2)!.children!.get('var')!)!.children!;
  return { fs, tree, out, notices, file, append, node, dir, tick: (ms: number) => (now += ms) };
}

const texts = (out: { text: string }[]) => out.map((l) => l.text);

describe('tail: following one file (state machine)', () => {
  it('starts with the last lines, then prints appends once, with their offsets', async () => {
    const t = setup();
    await t.file.start(t.tree, { lines: 2 }, true);
    assert.deepEqual(texts(t.out), ['two', 'three']);
    t.append('four\nfive\n');
    await t.file.poll(t.tree);
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['two', 'three', 'four', 'five']);
    assert.deepEqual(t.out.map((l) => l.offset), [4, 8, 14, 19]);
  });

  it('holds a partial line until its newline, or gives it out after two quiet polls', async () => {
    const t = setup();
    await t.file.start(t.tree, { lines: 0 }, true);
    t.append('half');
    await t.file.poll(t.tree);
    assert.deepEqual(t.out, []);
    t.append(' and the rest\n');
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['half and the rest']);
    t.append('lonely');
    await t.file.poll(t.tree);
    await t.file.poll(t.tree);
    assert.equal(t.out.length, 1);
    await t.file.poll(t.tree);
    assert.deepEqual(t.out.at(-1), { text: 'lonely', partial: true, offset: 32, inode: t.file.inode });
  });

  it('waits for zeros at the end of the file (data not yet written back), then prints the real bytes; zeros that stay are printed after the wait', async () => {
    const t = setup();
    await t.file.start(t.tree, { lines: 0 }, true);
    // The size on disk ran ahead of the data: ten zero bytes at the end.
    t.append(Buffer.concat([Buffer.from('ok\n'), Buffer.alloc(10)]));
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['ok']);
    t.tick(5000);
    await t.file.poll(t.tree);
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['ok'], 'still waiting, partial line rule or not');
    // Written back: the zeros become the line.
    const n = t.node();
    n.data = Buffer.concat([n.data!.subarray(0, n.data!.length - 10), Buffer.from('late line\n')]);
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['ok', 'late line']);
    // Zeros that never change: given out after the wait, said once.
    t.append(Buffer.alloc(4));
    await t.file.poll(t.tree);
    t.tick(10_001);
    await t.file.poll(t.tree);
    await t.file.poll(t.tree);
    await t.file.poll(t.tree);
    assert.equal(t.out.at(-1)!.text, '\0\0\0\0');
    assert.equal(t.notices.filter((m) => /read as zeros/.test(m)).length, 1);
  });

  it('truncation: said once, then the file from its start', async () => {
    const t = setup();
    await t.file.start(t.tree, { lines: 1 }, true);
    t.node().data = Buffer.from('new\n');
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['three', 'new']);
    assert.equal(t.notices.length, 1);
    assert.match(t.notices[0], /truncated \(from 14 to 4 bytes\)/);
  });

  it('rotation: the old file read to its end under its new name, then the new file from its start', async () => {
    const t = setup();
    await t.file.start(t.tree, { lines: 1 }, true);
    const oldIno = t.file.inode;
    t.append('unread in the old file\n');
    // logrotate: rename, then a new file at the path.
    const d = t.dir();
    d.set('app.log.1', d.get('app.log')!);
    d.delete('app.log');
    t.fs.file('/var/app.log', 'first of the new\n');
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['three', 'unread in the old file', 'first of the new']);
    assert.notEqual(t.file.inode, oldIno);
    assert.equal(t.out[1].inode, oldIno, 'the old file\'s line carries its inode');
    assert.match(t.notices.join('\n'), /rotated: .*the old file was read to its end/);
  });

  it('a path that goes and comes back: said once each way, the new file from its start', async () => {
    const t = setup();
    await t.file.start(t.tree, { lines: 0 }, true);
    const d = t.dir();
    const ino = d.get('app.log')!;
    d.delete('app.log');
    await t.file.poll(t.tree);
    await t.file.poll(t.tree);
    assert.equal(t.notices.length, 1);
    assert.match(t.notices[0], /does not exist any more/);
    d.set('app.log', ino);
    t.append('back\n');
    await t.file.poll(t.tree);
    assert.deepEqual(texts(t.out), ['one', 'two', 'three', 'back'], 'a file that appears is printed from its start');
    assert.match(t.notices[1], /appeared/);
  });

  it('a missing file: an error without -f; waited for with -f', async () => {
    const t = setup();
    const missing = new TailedFile('/var/none.log', { lines: () => undefined, notice: () => undefined });
    await assert.rejects(missing.start(t.tree, {}, false), /no such file|does not exist/);
    await missing.start(t.tree, {}, true);
    assert.equal(missing.inode, undefined);
  });
});

describe('tail: lines out of bytes', () => {
  it('splits across pieces, keeps offsets, bounds a line without newline', () => {
    const s = new LineSplitter(8);
    assert.deepEqual(s.push(Buffer.from('ab'), 0), []);
    assert.deepEqual(s.push(Buffer.from('c\nde'), 2).map((l) => [l.bytes.toString(), l.offset]), [['abc', 0]]);
    assert.equal(s.pending, 2);
    const long = s.push(Buffer.from('fghijk'), 6);
    assert.deepEqual(long.map((l) => [l.bytes.toString(), l.offset, l.partial]), [['defghijk', 4, true]], 'given out at the bound');
  });

  it('finds where the last N lines and line K start, as tail -n and -n +K count', async () => {
    const data = Buffer.from('a\nbb\nccc\n');
    const read = async (o: number, n: number) => data.subarray(o, o + n);
    assert.equal(await lastLinesStart(read, data.length, 1, 3), 5);
    assert.equal(await lastLinesStart(read, data.length, 2, 3), 2);
    assert.equal(await lastLinesStart(read, data.length, 9, 3), 0);
    const noNl = Buffer.from('a\nb');
    assert.equal(await lastLinesStart(async (o, n) => noNl.subarray(o, o + n), 3, 1), 2);
    assert.equal(await lineStart(read, data.length, 2, 2), 2);
    assert.equal(await lineStart(read, data.length, 9), data.length);
  });

  it('suspects zeros only up to the end of the file or a sector boundary', () => {
    assert.equal(unwrittenZeros(Buffer.from('ab\0\0'), 0, 4), 2);
    assert.equal(unwrittenZeros(Buffer.from('a\0b'), 0, 3), -1, 'a zero inside a line is content');
    const block = Buffer.concat([Buffer.from('x'), Buffer.alloc(511), Buffer.from('y')]);
    assert.equal(unwrittenZeros(block, 0, 2000), 1, 'zeros up to a sector boundary');
  });
});
