/**
 * Sizes as `df -h` and virt-df -h print them: gnulib's human_readable() with
 * autoscale, base 1024, SI-style single-letter suffixes, round to nearest
 * (ties to even), one decimal below 10 ("1.2G", "235M", "1.0K").
 * Re-derived from gnulib's documented behaviour; integer arithmetic only, so
 * huge filesystems never lose precision.
 */
const POWER_LETTERS = ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y', 'R', 'Q'];

/** `bytes` as df -h prints it. */
export function humanSize(bytes: bigint | number): string {
  let amt = BigInt(bytes);
  const base = 1024n;
  let tenths = 0n;
  // 0 exact, 1 below half, 2 exactly half, 3 above half (of the last dropped digit).
  let rounding = 0n;
  let exponent = 0;
  let decimal = '';
  if (amt >= base) {
    do {
      const r10 = (amt % base) * 10n + tenths;
      const r2 = (r10 % base) * 2n + (rounding >> 1n);
      amt /= base;
      tenths = r10 / base;
      rounding = r2 < base ? BigInt(r2 !== 0n) + BigInt(rounding !== 0n) : 2n + BigInt(base < r2 + rounding);
      exponent++;
    } while (amt >= base && exponent < POWER_LETTERS.length - 1);
    if (amt < 10n) {
      if (2n < rounding + (tenths & 1n)) {
        tenths++;
        rounding = 0n;
        if (tenths === 10n) {
          amt++;
          tenths = 0n;
        }
      }
      if (amt < 10n) {
        decimal = `.${tenths}`;
        tenths = 0n;
        rounding = 0n;
      }
    }
  }
  if (5n < tenths + BigInt(0n < rounding + (amt & 1n))) {
    amt++;
    if (exponent > 0 && amt === base && exponent < POWER_LETTERS.length - 1) {
      exponent++;
      decimal = '.0';
      amt = 1n;
    }
  }
  return `${amt}${decimal}${POWER_LETTERS[exponent]}`;
}
