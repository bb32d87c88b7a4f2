/**
 * virt-df computes Use% in C `float`, prints text as "%3.0f%%" of ceil() and
 * CSV as "%.1f". Emulating the float (Math.fround) matters: it decides which
 * way ceil() and the last decimal go.
 */
export function usePercent(total: number, free: number): number {
  if (total === 0) return 0;
  return Math.fround(100 - (100 * free) / total);
}

/** "%3.0f%%" of ceil(p). */
export function textPercent(p: number): string {
  return `${String(Math.ceil(p)).padStart(3)}%`;
}

/** printf("%.1f", p) for a float32 value: exact, ties to even as glibc does. */
export function csvPercent(p: number): string {
  // p is a float32, so p * 10 is exact in a double.
  const y = p * 10;
  let n = Math.floor(y);
  const frac = y - n;
  if (frac > 0.5 || (frac === 0.5 && n % 2 !== 0)) n += 1;
  const neg = n < 0;
  const abs = Math.abs(n);
  return `${neg ? '-' : ''}${Math.floor(abs / 10)}.${abs % 10}`;
}
