/**
 * ext4 damage: debugfs -w edits of the superblock, group descriptors and
 * inodes (debugfs keeps metadata_csum checksums right, so the damage reaches
 * past the checksum checks), truncations at the first group's structures,
 * and bit flips in the superblock, descriptors, inode table, directory blocks
 * and the journal superblock. The kernel (a read-only mount of a copy) is the oracle.
 */
import { join } from 'node:path';
import { bitflips, haveTools, tool, truncations, type DamageCase, type ReaderFactory } from './damage.ts';
import { populateThroughKernel } from './tree.ts';

const SIZE = 16 << 20;

export const ext4Corpus: ReaderFactory = async (dir) => {
  const missing = await haveTools(['mke2fs', 'debugfs', 'dumpe2fs']);
  if (missing) return { unavailable: missing };
  const base = join(dir, 'ext4-base.img');
  await tool('truncate', ['-s', String(SIZE), base]);
  // 1 KiB blocks: two groups, a backup superblock, a journal; metadata_csum (mke2fs's default).
  await tool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-L', 'damaged', base]);
  await populateThroughKernel(base);
  const dump = await tool('dumpe2fs', [base]);
  const num = (re: RegExp) => Number(re.exec(dump)?.[1] ?? NaN);
  const bs = num(/^Block size:\s+(\d+)/m);
  const inodeSize = num(/^Inode size:\s+(\d+)/m);
  const blockBitmap = num(/Block bitmap at (\d+)/);
  const inodeBitmap = num(/Inode bitmap at (\d+)/);
  const inodeTable = num(/Inode table at (\d+)/);
  const group1 = num(/Backup superblock at (\d+)/);
  const bmap = async (what: string) => Number((await tool('debugfs', ['-R', `bmap ${what} 0`, base])).trim().split('\n')[0]);
  const rootDir = await bmap('<2>');
  const manyDir = await bmap('/many');
  const journal = await bmap('<8>');
  const messages = await bmap('/var/log/messages');
  const r = 'ext4';
  const edit = (what: string, requests: string[], ls = false): DamageCase => ({
    reader: r,
    technique: 'edit',
    name: `${r}/debugfs-${what}`,
    ls,
    async damage(image) {
      // debugfs -w exits 0 even when a request fails; its complaints are on stderr, which is fine: the edit is the case.
      await tool('debugfs', ['-w', ...requests.flatMap((q) => ['-R', q]), image]).catch(async () => {
        for (const q of requests) await tool('debugfs', ['-w', '-R', q, image]);
      });
    },
  });
  const cases: DamageCase[] = [
    edit('sb-free-blocks-0', ['ssv free_blocks_count 0']),
    edit('sb-free-blocks-huge', ['ssv free_blocks_count 99999999']),
    edit('sb-free-inodes-huge', ['ssv free_inodes_count 4000000000']),
    edit('sb-inodes-count-17', ['ssv inodes_count 17']),
    edit('sb-blocks-count-huge', ['ssv blocks_count 4000000000']),
    edit('sb-log-block-size-9', ['ssv log_block_size 9']),
    edit('sb-blocks-per-group-0', ['ssv blocks_per_group 0']),
    edit('sb-inodes-per-group-0', ['ssv inodes_per_group 0']),
    edit('sb-first-data-block-5', ['ssv first_data_block 5']),
    edit('sb-inode-size-3', ['ssv inode_size 3']),
    edit('sb-first-ino-1', ['ssv first_ino 1']),
    edit('sb-rev-level-7', ['ssv rev_level 7']),
    edit('sb-magic-0', ['ssv magic 0']),
    edit('sb-state-error', ['ssv state 2']),
    edit('sb-r-blocks-huge', ['ssv r_blocks_count 99999999']),
    edit('sb-desc-size-3', ['ssv desc_size 3']),
    edit('sb-feature-incompat-unknown', ['feature -f FEATURE_I31']),
    edit('sb-needs-recovery', ['feature needs_recovery']),
    edit('sb-journal-inum-5', ['ssv journal_inum 5']),
    edit('gd0-free-blocks-huge', ['set_bg 0 free_blocks_count 60000']),
    edit('gd0-inode-table-0', ['set_bg 0 inode_table 0']),
    edit('gd0-block-bitmap-beyond', ['set_bg 0 block_bitmap 999999']),
    edit('gd1-inode-bitmap-sb', ['set_bg 1 inode_bitmap 1']),
    edit('gd0-checksum-0', ['set_bg 0 checksum 0']),
    edit('root-mode-0', ['sif <2> mode 0'], true),
    edit('root-size-0', ['sif <2> size 0'], true),
    edit('root-links-0', ['sif <2> links_count 0']),
    edit('root-flags-no-extents', ['sif <2> flags 0'], true),
    edit('root-block0-beyond', ['sif <2> block[2] 999999'], true),
    edit('clri-root', ['clri <2>'], true),
    edit('clri-many', ['clri /many'], true),
    edit('clri-journal', ['clri <8>']),
    edit('clri-resize-inode', ['clri <7>']),
    edit('file-size-huge', ['sif /var/log/messages size 0xffffffffffff'], true),
    edit('file-extent-beyond', ['sif /var/log/messages block[5] 999999'], true),
    edit('dir-loop', ['sif /home/user/docs block[5] ' + String(rootDir)], true),
    edit('freeb-messages', [`freeb ${messages} 200`]),
    edit('freei-many', ['freei /many']),
    edit('inode-checksum-0', ['sif /etc/hostname checksum 0'], true),
    edit('link-to-clri', ['clri /etc/hostname'], true),
    ...truncations(r, [
      ['before-superblock', 1024],
      ['in-superblock', 1024 + 512],
      ['after-superblock', 2048],
      ['after-group-descriptors', 3 * bs],
      ['at-block-bitmap', blockBitmap * bs],
      ['at-inode-bitmap', inodeBitmap * bs],
      ['at-inode-table', inodeTable * bs],
      ['in-inode-table', inodeTable * bs + 4 * bs],
      ['at-root-directory', rootDir * bs],
      ['at-journal', journal * bs],
      ['at-file-data', messages * bs],
      ['at-group-1', group1 * bs],
      ['last-block', SIZE - bs],
    ], SIZE),
    ...bitflips(r, [
      ['superblock', 1024, 1024],
      ['superblock-counts', 1024, 32],
      ['group-descriptors', 2 * bs, 64],
      ['block-bitmap', blockBitmap * bs, bs],
      ['inode-table-root', inodeTable * bs + inodeSize, inodeSize],
      ['inode-table', inodeTable * bs, 16 * inodeSize],
      ['root-directory', rootDir * bs, bs],
      ['many-directory', manyDir * bs, bs],
      ['journal-superblock', journal * bs, 1024],
    ], [1, 2, 3]),
  ];
  return { reader: r, base, cases };
};
