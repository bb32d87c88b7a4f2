/** The parts of the `lzo` package (minilzo's lzo1x_decompress_safe) this driver uses. */
declare module 'lzo' {
  /** Decompress into at most `length` bytes; throws an Error naming the LZO error code on bad or oversized input. */
  export function decompress(input: Buffer, length: number): Buffer;
  const lzo: { decompress: typeof decompress; version: string };
  export default lzo;
}
