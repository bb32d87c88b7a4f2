/**
 * Compare guestlens's reading of an image with qemu-img's: the extent map and
 * random ranges of bytes (and, with --whole, every byte). Point it at any
 * image: `bash scripts/compare-with-qemu-img.sh IMAGE [--format F] [--ranges N] [--whole]`.
 * Exit 0 when both agree, 1 when they do not (the differences are printed).
 */
import { compareWithQemuImg } from '../test/support/qemuImgCompare.ts';

const args = process.argv.slice(2);
const image = args.find((a, i) => !a.startsWith('--') && !['--format', '--ranges', '--seed'].includes(args[i - 1] ?? ''));
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (!image) {
  console.error('usage: compare-with-qemu-img.sh IMAGE [--format FORMAT] [--ranges N] [--seed N] [--whole]');
  process.exit(2);
}
const r = await compareWithQemuImg(image, { format: opt('--format'), ranges: opt('--ranges') ? Number(opt('--ranges')) : undefined, seed: opt('--seed') ? Number(opt('--seed')) : undefined, whole: args.includes('--whole') });
console.log(`extent map: ${r.mapEqual ? 'equal' : 'DIFFERENT'} (${r.ours.length} runs ours, ${r.theirs.length} qemu-img's)`);
if (!r.mapEqual) {
  console.log('ours:   ', JSON.stringify(r.ours.slice(0, 20)));
  console.log('qemu-img:', JSON.stringify(r.theirs.slice(0, 20)));
}
console.log(`bytes: ${r.checkedRanges - r.mismatches.length} of ${r.checkedRanges} ranges equal${r.mismatches.length ? `; different: ${JSON.stringify(r.mismatches)}` : ''}`);
process.exit(r.mapEqual && r.mismatches.length === 0 ? 0 : 1);
