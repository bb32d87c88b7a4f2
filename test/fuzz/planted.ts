/**
 * A tiny parser with a planted bug three comparisons deep: the engine must
 * find it within seconds, which blind mutation (one in ~10^8 cases) would
 * not. The in-suite fuzz test runs it first: a fuzzer that cannot find
 * this finds nothing.
 */
import { GuestlensError } from '@guestlens/block';
import { typedOnly, type FuzzTarget } from './target.ts';

function parse(b: Buffer): void {
  if (b.length < 16) return;
  if (b.readUInt32LE(0) === 0xffffffff) {
    if (b.readUInt16BE(8) === 0x8000) {
      if (b[12] === 0x7f) throw new TypeError('planted bug reached');
    }
  }
  // A typed error about the input is an answer, not a finding.
  if (b[4] === 0) throw new GuestlensError('EFSCORRUPTED', 'byte 4 is zero');
}

const target: FuzzTarget = {
  name: 'planted',
  about: 'the engine self-test',
  async seeds() {
    return [{ name: 'zeros', data: Buffer.alloc(16, 0x10), hot: [[0, 4], [8, 2], [12, 1]] }];
  },
  async fuzz(input) {
    await typedOnly(async () => parse(input.bytes()));
  },
};
export default target;
