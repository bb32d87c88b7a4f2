/**
 * virt-df's formatting rules, checked against rows Debian's virt-df printed on
 * this machine for the sample guest (test/df-virt-df.test.ts also compares
 * against a live virt-df run).
 */
import assert from 'node:assert/strict';
import { dfHeader, dfRow, guestDisplayName } from '../src/df/dfOutput.ts';
import { humanSize } from '../src/output/humanSize.ts';
import { csvField } from '../src/output/csv.ts';
import { csvPercent } from '../src/df/percent.ts';

const sda1 = { bsize: 1024, blocks: 30324, bfree: 29818, bavail: 28180, files: 8192, ffree: 8180 };
const text = { human: false, inodes: false, csv: false };

describe('df output (virt-df format)', () => {
  it('prints the header and a row with virt-df column widths', () => {
    assert.equal(dfHeader(text), 'Filesystem                           1K-blocks       Used  Available  Use%\n');
    assert.equal(dfRow('guest.qcow2', '/dev/sda1', sda1, text), 'guest.qcow2:/dev/sda1                    30324        506      28180    2%\n');
  });

  it('wraps a name longer than 36 bytes onto its own line', () => {
    const name = 'a very long guest image name, with comma.qcow2';
    assert.equal(dfRow(name, '/dev/sda1', sda1, { ...text, human: true }), `${name}:/dev/sda1\n${' '.repeat(36)}       30M       506K        28M    2%\n`);
  });

  it('pads by bytes like printf, so a non-ASCII name pads less', () => {
    const row = dfRow('gäst', '/dev/sda', sda1, text);
    assert.equal(row.indexOf('30324'), 36 - 1 + 10 - 5);
  });

  it('prints inode columns as plain numbers, even with -h', () => {
    assert.equal(dfHeader({ ...text, inodes: true }), 'Filesystem                              Inodes      IUsed      IFree IUse%\n');
    assert.equal(dfRow('g', '/dev/sda1', sda1, { human: true, inodes: true, csv: false }), `${'g:/dev/sda1'.padEnd(36)}      8192         12       8180    1%\n`);
  });

  it('prints CSV with separate name and device, quoting only where needed, percent %.1f', () => {
    const csv = { ...text, csv: true };
    assert.equal(dfHeader(csv), 'VirtualMachine,Filesystem,1K-blocks,Used,Available,Use%\n');
    assert.equal(dfRow('a very long guest image name, with comma.qcow2', '/dev/sda1', sda1, csv), '"a very long guest image name, with comma.qcow2",/dev/sda1,30324,506,28180,1.7\n');
    assert.equal(dfRow('g', '/dev/sda1', sda1, { ...csv, inodes: true }), 'g,/dev/sda1,8192,12,8180,0.1\n');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('plain'), 'plain');
  });

  it('prints 0% for a filesystem of zero blocks or inodes', () => {
    const empty = { bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0 };
    assert.match(dfRow('g', '/dev/sda', empty, text), / {3}0%\n$/);
    assert.match(dfRow('g', '/dev/sda', empty, { ...text, csv: true }), /,0\.0\n$/);
  });

  it('rounds sizes as df -h does', () => {
    assert.equal(humanSize(0), '0');
    assert.equal(humanSize(1023), '1023');
    assert.equal(humanSize(1024), '1.0K');
    assert.equal(humanSize(506 * 1024), '506K');
    assert.equal(humanSize(2962 * 1024), '2.9M');
    assert.equal(humanSize(117203 * 1024), '114M');
    assert.equal(humanSize(105067 * 1024), '103M');
    assert.equal(humanSize(28180 * 1024), '28M');
    assert.equal(humanSize(1048535 * 1024), '1.0G');
    assert.equal(humanSize(10n * 1024n ** 6n), '10E');
  });

  it('rounds CSV percentages to even on exact ties, as glibc printf does', () => {
    assert.equal(csvPercent(Math.fround(12.25)), '12.2');
    assert.equal(csvPercent(Math.fround(12.75)), '12.8');
    assert.equal(csvPercent(Math.fround(1.6686)), '1.7');
  });

  it('names a multi-disk guest by its first disk plus one "+" per extra disk', () => {
    assert.equal(guestDisplayName('sda.qcow2', 3), 'sda.qcow2++');
    assert.equal(guestDisplayName('only.img', 1), 'only.img');
  });
});
