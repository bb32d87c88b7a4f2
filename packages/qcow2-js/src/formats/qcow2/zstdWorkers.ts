/**
 * Worker threads that decompress zstd clusters in parallel, as QEMU does in
 * its thread pool: WebAssembly zstd runs at about half native speed, so one
 * thread cannot keep up with qemu-img on a multi-core machine.
 *
 * Each worker instantiates the same compiled libzstd module. Compressed bytes
 * and the output are SharedArrayBuffers the caller owns: the worker reads and
 * writes them in place, nothing is copied or allocated per cluster. Workers
 * are started on the first bulk read and do not keep the process alive when idle.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WasmModule } from './zstdWasm.ts';

/** The worker, as plain JavaScript: it must run the same from the TypeScript sources and from the CLI bundle. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const imports = {};
for (const imp of WebAssembly.Module.imports(workerData.module)) {
  if (imp.kind === 'function') (imports[imp.module] ??= {})[imp.name] = () => {};
}
const ex = new WebAssembly.Instance(workerData.module, imports).exports;
let input = 0, inputCapacity = 0, output = 0, outputCapacity = 0;
function reserve(inBytes, outBytes) {
  if (inBytes > inputCapacity) { if (input) ex.free(input); input = ex.malloc(inBytes); inputCapacity = input ? inBytes : 0; }
  if (outBytes > outputCapacity) { if (output) ex.free(output); output = ex.malloc(outBytes); outputCapacity = output ? outBytes : 0; }
  return input !== 0 && output !== 0;
}
parentPort.on('message', (req) => {
  const src = new Uint8Array(req.input);
  const dst = new Uint8Array(req.output);
  // Shared memory: both buffers stay with the caller, which waits for this reply before touching them.
  const items = req.items;
  const ok = new Uint8Array(items.length / 3);
  for (let i = 0; i < ok.length; i++) {
    const inOffset = items[3 * i], inLength = items[3 * i + 1], outOffset = items[3 * i + 2];
    if (!reserve(inLength, req.clusterSize)) continue;
    new Uint8Array(ex.memory.buffer, input, inLength).set(src.subarray(inOffset, inOffset + inLength));
    const produced = ex.ZSTD_decompress(output, req.clusterSize, input, inLength);
    if (produced !== req.clusterSize) continue;
    dst.set(new Uint8Array(ex.memory.buffer, output, produced), outOffset);
    ok[i] = 1;
  }
  parentPort.postMessage({ id: req.id, ok });
});
`;

export interface ZstdJob {
  /** Compressed bytes. */
  input: SharedArrayBuffer;
  /** Per cluster: offset and length of its frames in `input`, offset of its output in `output`. */
  items: Int32Array;
  output: SharedArrayBuffer;
  clusterSize: number;
}

export interface ZstdJobResult {
  /** 1 where the cluster decoded to exactly clusterSize bytes. */
  ok: Uint8Array;
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

interface Waiting {
  job: ZstdJob;
  resolve(result: ZstdJobResult): void;
  reject(err: Error): void;
}

export class ZstdWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Waiting[] = [];
  private readonly inFlight = new Map<number, { slot: Slot; waiting: Waiting }>();
  private nextId = 1;
  private broken: Error | undefined;

  constructor(
    private readonly module: WasmModule,
    readonly size: number,
  ) {}

  get usable(): boolean {
    return this.broken === undefined;
  }

  run(job: ZstdJob): Promise<ZstdJobResult> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  /** Stop the workers (reads then decompress in the calling thread). */
  async close(): Promise<void> {
    this.fail(new Error('zstd worker pool closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private dispatch(): void {
    while (this.queue.length) {
      let slot = this.slots.find((s) => !s.busy);
      if (!slot && this.slots.length < this.size) slot = this.start();
      if (!slot) return;
      const waiting = this.queue.shift() as Waiting;
      const id = this.nextId++;
      slot.busy = true;
      // Keep the process alive only while a worker has work.
      slot.worker.ref();
      this.inFlight.set(id, { slot, waiting });
      const { job } = waiting;
      slot.worker.postMessage({ id, input: job.input, output: job.output, items: job.items, clusterSize: job.clusterSize });
    }
  }

  private start(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: this.module } });
    const slot: Slot = { worker, busy: false };
    worker.unref();
    worker.on('message', (msg: { id: number } & ZstdJobResult) => {
      const entry = this.inFlight.get(msg.id);
      if (!entry) return;
      this.inFlight.delete(msg.id);
      slot.busy = false;
      worker.unref();
      entry.waiting.resolve({ ok: msg.ok });
      this.dispatch();
    });
    worker.on('error', (err) => this.fail(err instanceof Error ? err : new Error(String(err))));
    worker.on('exit', (code) => {
      if (!this.broken) this.fail(new Error(`zstd worker exited (${code})`));
    });
    this.slots.push(slot);
    return slot;
  }

  private fail(err: Error): void {
    this.broken ??= err;
    for (const { waiting } of this.inFlight.values()) waiting.reject(err);
    this.inFlight.clear();
    for (const waiting of this.queue.splice(0)) waiting.reject(err);
  }
}

let pool: ZstdWorkerPool | undefined;

/** The process's pool, or undefined on a single-core machine where workers would only add overhead. */
export function zstdWorkerPool(module: WasmModule): ZstdWorkerPool | undefined {
  if (pool && !pool.usable) return undefined;
  if (!pool) {
    const size = Math.min(4, availableParallelism());
    if (size < 2) return undefined;
    pool = new ZstdWorkerPool(module, size);
  }
  return pool;
}
