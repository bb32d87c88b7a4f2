/**
 * libzstd's decoder as WebAssembly (the build the zstddec package ships),
 * used without allocating per cluster: compressed bytes are copied into one
 * reusable region of the module's memory and the output is copied straight
 * from its memory to the caller's buffer. zstddec's own decode() allocates a
 * fresh array per call, which at disk speed piles up tens of MiB of garbage.
 *
 * The compiled module is kept so worker threads can instantiate it too.
 */
import type { ZSTDDecoder } from 'zstddec';

/** What TypeScript needs to know of WebAssembly here (the project's lib settings carry no WebAssembly types). */
export type WasmModule = object;
interface Instantiated {
  module: WasmModule;
  instance: { exports: unknown };
}

interface ZstdExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(pointer: number): void;
  ZSTD_decompress(dst: number, dstCapacity: number, src: number, srcSize: number): number;
}

let instantiated: Instantiated | undefined;

/** zstddec hands its instantiated module to `_init`; keep it. */
function capturingDecoder(Base: typeof ZSTDDecoder): ZSTDDecoder {
  class CapturingDecoder extends Base {
    override _init(result: Parameters<ZSTDDecoder['_init']>[0]): void {
      instantiated = result as Instantiated;
      super._init(result);
    }
  }
  return new CapturingDecoder();
}

let loading: Promise<ZstdWasm> | undefined;

/**
 * zstddec fetches its embedded module from a data: URL when fetch exists,
 * which loads Node's whole HTTP client (~12 MiB) for nothing. It decides
 * synchronously inside init(); hide fetch for exactly that call.
 */
function initWithoutFetch(decoder: ZSTDDecoder): Promise<void> {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'fetch');
  if (!descriptor?.configurable) return decoder.init();
  Object.defineProperty(globalThis, 'fetch', { value: undefined, configurable: true, writable: true });
  try {
    return decoder.init();
  } finally {
    Object.defineProperty(globalThis, 'fetch', descriptor);
  }
}

/** The process's zstd decoder (instantiated once). */
export function zstdWasm(): Promise<ZstdWasm> {
  loading ??= (async () => {
    // Loaded on the first zstd cluster: most images never need it.
    const { ZSTDDecoder: Base } = await import('zstddec');
    await initWithoutFetch(capturingDecoder(Base));
    if (!instantiated) throw new Error('zstddec did not hand over its WebAssembly instance');
    return new ZstdWasm(instantiated.instance.exports as unknown as ZstdExports, instantiated.module);
  })();
  return loading;
}

export class ZstdWasm {
  private input = 0;
  private inputCapacity = 0;
  private output = 0;
  private outputCapacity = 0;

  constructor(
    private readonly exports: ZstdExports,
    /** The compiled module, for workers. */
    readonly module: WasmModule,
  ) {}

  /**
   * Decode `src`, which must be exactly whole frames, into `dst` (its length
   * is the capacity). Returns the bytes produced, or -1 when libzstd rejects
   * the data or it does not fit.
   */
  decompress(src: Uint8Array, dst: Uint8Array): number {
    const ex = this.exports;
    if (src.length > this.inputCapacity) {
      if (this.input) ex.free(this.input);
      this.input = ex.malloc(src.length);
      this.inputCapacity = this.input ? src.length : 0;
    }
    if (dst.length > this.outputCapacity) {
      if (this.output) ex.free(this.output);
      this.output = ex.malloc(dst.length);
      this.outputCapacity = this.output ? dst.length : 0;
    }
    if (!this.input || !this.output) return -1;
    // Views are made after malloc: growing the memory detaches older ones.
    new Uint8Array(ex.memory.buffer, this.input, src.length).set(src);
    const produced = ex.ZSTD_decompress(this.output, dst.length, this.input, src.length);
    // size_t errors come back as negative i32 values in wasm32.
    if (produced < 0 || produced > dst.length) return -1;
    dst.set(new Uint8Array(ex.memory.buffer, this.output, produced));
    return produced;
  }
}
