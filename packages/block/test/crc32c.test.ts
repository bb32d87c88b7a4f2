import assert from 'node:assert/strict';
import { crc32c, crc32cStandard } from '../src/index.ts';

describe('crc32c', () => {
  it('the standard check value of "123456789" is 0xe3069283', () => {
    assert.equal(crc32cStandard(Buffer.from('123456789')), 0xe3069283);
  });

  it('chains over pieces like one pass over the whole', () => {
    const data = Buffer.from('the quick brown fox jumps over the lazy dog, twice over');
    const whole = crc32c(0xffffffff, data);
    assert.equal(crc32c(crc32c(0xffffffff, data, 0, 13), data, 13), whole);
  });
});
