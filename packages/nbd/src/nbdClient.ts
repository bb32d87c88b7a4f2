/**
 * A small, read-only NBD client over a unix socket.
 *
 * Handshake: fixed newstyle only (the server must offer FIXED_NEWSTYLE; we
 * answer FIXED_NEWSTYLE, plus NO_ZEROES when offered), then three options:
 * STRUCTURED_REPLY (optional, the server may refuse), SET_META_CONTEXT for
 * "base:allocation" (only with structured replies), and GO asking for the
 * export and block-size information. No TLS, no extended headers, no
 * oldstyle servers.
 *
 * Transmission: READ, BLOCK_STATUS and DISC. Requests are pipelined, each
 * known by its cookie; replies may come in any order, simple or structured.
 *
 * Nothing the server sends is trusted: every magic is checked, every length
 * is bounded before anything is allocated for it (a data chunk can only be as
 * long as the read it answers, an option reply at most 64 KiB), a reply for a
 * cookie we did not send or a chunk outside its request ends the connection
 * with an NbdProtocolError, and the handshake has a deadline.
 */
import { createConnection, type Socket } from 'node:net';
import { BlockRangeError, toSafeNumber } from '@guestlens/block';
import { NbdClosedError, NbdCommandError, NbdConnectionError, NbdOptionError, NbdProtocolError, NbdTimeoutError } from './errors.ts';

// Handshake magics and flags.
const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
const OLDSTYLE_MAGIC = 0x0000420281861253n;
const OPT_REPLY_MAGIC = 0x0003e889045565a9n;
const FLAG_FIXED_NEWSTYLE = 1 << 0;
const FLAG_NO_ZEROES = 1 << 1;

const OPT_GO = 7;
const OPT_STRUCTURED_REPLY = 8;
const OPT_SET_META_CONTEXT = 10;
const OPT_NAMES: Record<number, string> = { [OPT_GO]: 'GO', [OPT_STRUCTURED_REPLY]: 'STRUCTURED_REPLY', [OPT_SET_META_CONTEXT]: 'SET_META_CONTEXT' };

const REP_ACK = 1;
const REP_INFO = 3;
const REP_META_CONTEXT = 4;
const REP_ERROR_BIT = 0x80000000;

const INFO_EXPORT = 0;
const INFO_BLOCK_SIZE = 3;

// Transmission.
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
const CMD_READ = 0;
const CMD_DISC = 2;
const CMD_BLOCK_STATUS = 7;
const REPLY_FLAG_DONE = 1;
const CHUNK_NONE = 0;
const CHUNK_OFFSET_DATA = 1;
const CHUNK_OFFSET_HOLE = 2;
const CHUNK_BLOCK_STATUS = 5;
const CHUNK_ERROR_BIT = 0x8000;
const CHUNK_ERROR = CHUNK_ERROR_BIT + 1;
const CHUNK_ERROR_OFFSET = CHUNK_ERROR_BIT + 2;

export const TRANSMISSION_FLAG_READ_ONLY = 1 << 1;
/** base:allocation status bits. */
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;
export const BASE_ALLOCATION = 'base:allocation';

// Bounds on what we accept from a server.
const MAX_OPTION_REPLY = 64 * 1024;
const MAX_ERROR_MESSAGE = 4096;
/** Largest read sent in one request, whatever the server allows (the protocol's default maximum). */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Largest block-status request (a 32-bit length, kept well below it). */
const MAX_STATUS_REQUEST = 1024 * 1024 * 1024;
/** Descriptors accepted in one block-status chunk (1 MiB of them, what QEMU sends at most). */
const MAX_DESCRIPTORS = 1 << 17;
const MAX_MIN_BLOCK = 64 * 1024;
const MAX_IN_FLIGHT = 64;
/** Bytes buffered from the socket before it is paused (the reply loop then catches up). */
const HIGH_WATER = 4 * 1024 * 1024;

export interface NbdConnectOptions {
  /** Path of the server's unix socket. */
  socketPath: string;
  /** Export name (default: the empty name, the server's default export). */
  exportName?: string;
  /** How messages name this connection (default: "NBD export at <socket>"). */
  name?: string;
  /** Deadline for connecting and the whole handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Fail the connection when one request gets no complete reply in this time (default: no limit). */
  requestTimeoutMs?: number;
  /** Ask for the base:allocation context (default true). */
  blockStatus?: boolean;
}

export interface NbdExportInfo {
  size: number;
  transmissionFlags: number;
  readOnly: boolean;
  /** Block sizes the server announced (1 / 4096 / 32 MiB when it said nothing). */
  minBlockSize: number;
  preferredBlockSize: number;
  maxBlockSize: number;
  structuredReplies: boolean;
  /** Whether base:allocation was negotiated (block status works). */
  baseAllocation: boolean;
}

/** One base:allocation descriptor: `length` bytes at `offset` with `flags` (STATE_HOLE, STATE_ZERO). */
export interface BlockStatusExtent {
  offset: number;
  length: number;
  flags: number;
}

/** Buffers what the socket delivers and hands it out in exact-length pieces. */
class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.serve();
      if (!this.waiter && this.buffered > HIGH_WATER) socket.pause();
    });
  }

  /** Exactly `n` bytes (n already bounded by the caller). */
  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('internal: two concurrent reads of one NBD socket'));
    if (this.buffered >= n) return Promise.resolve(this.take(n));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      if (this.socket.isPaused()) this.socket.resume();
    });
  }

  fail(err: Error): void {
    if (!this.failure) this.failure = err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }

  private serve(): void {
    const w = this.waiter;
    if (w && this.buffered >= w.n) {
      this.waiter = undefined;
      w.resolve(this.take(w.n));
    }
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - done);
      c.copy(out, done, 0, k);
      done += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

interface PendingBase {
  cookie: number;
  offset: number;
  length: number;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  /** First error chunk of a structured reply: reported when the reply is done. */
  error?: NbdCommandError;
}
interface PendingRead extends PendingBase {
  kind: 'read';
  target: Buffer;
  targetOffset: number;
  covered: Array<[number, number]>;
  resolve: () => void;
}
interface PendingStatus extends PendingBase {
  kind: 'status';
  extents: BlockStatusExtent[];
  resolve: (e: BlockStatusExtent[]) => void;
}
type Pending = PendingRead | PendingStatus;

function optionName(opt: number): string {
  return `NBD_OPT_${OPT_NAMES[opt] ?? opt}`;
}

export class NbdClient {
  readonly name: string;
  readonly info: NbdExportInfo;
  private readonly pending = new Map<number, Pending>();
  private nextCookie = 1;
  private failure: Error | undefined;
  private closed = false;
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];
  private readonly closedPromise: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    name: string,
    info: NbdExportInfo,
    private readonly metaContextId: number | undefined,
    private readonly requestTimeoutMs: number | undefined,
  ) {
    this.name = name;
    this.info = info;
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => this.fatal(new NbdConnectionError(this.name, 'the NBD server closed the connection', 'was the server (qemu-storage-daemon) stopped?')));
    void this.replyLoop();
  }

  /** Connect to `socketPath`, negotiate, and return a client ready for reads. */
  static async connect(options: NbdConnectOptions): Promise<NbdClient> {
    const name = options.name ?? `NBD export at ${options.socketPath}`;
    const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const socket = createConnection({ path: options.socketPath });
    const reader = new SocketReader(socket);
    const timer = setTimeout(() => {
      const err = new NbdTimeoutError(name, 'the NBD handshake', timeoutMs);
      reader.fail(err);
      socket.destroy();
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      const hints: Record<string, string> = {
        ENOENT: 'no such socket: is the NBD server running?',
        ECONNREFUSED: 'nothing listens on it: is the NBD server running?',
        EACCES: 'permission denied on the socket',
      };
      reader.fail(new NbdConnectionError(name, `cannot connect to ${options.socketPath}: ${err.code ?? err.message}`, hints[err.code ?? ''] ?? ''));
    };
    socket.on('error', onError);
    const onClose = () => reader.fail(new NbdConnectionError(name, 'the NBD server closed the connection during the handshake', 'is it an NBD server, and does it have that export?'));
    socket.on('close', onClose);
    try {
      const negotiated = await handshake(socket, reader, name, options.exportName ?? '', options.blockStatus ?? true);
      socket.removeListener('error', onError);
      socket.on('error', () => { /* reported through 'close' */ });
      return new NbdClient(socket, reader, name, negotiated.info, negotiated.contextId, options.requestTimeoutMs);
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
      socket.removeListener('close', onClose);
    }
  }

  /** Exactly `length` bytes at `offset`. */
  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  /** Read into `target` at `targetOffset`; large or unaligned reads are split and aligned to the server's block sizes. */
  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    if (targetOffset < 0 || targetOffset + length > target.length) throw new RangeError(`${this.name}: target buffer too small`);
    if (length === 0) return;
    const min = this.info.minBlockSize;
    const start = Math.floor(offset / min) * min;
    const end = Math.min(Math.ceil((offset + length) / min) * min, this.info.size);
    if (start !== offset || end !== offset + length) {
      const tmp = Buffer.allocUnsafe(end - start);
      await this.readAligned(tmp, 0, start, end - start);
      tmp.copy(target, targetOffset, offset - start, offset - start + length);
      return;
    }
    await this.readAligned(target, targetOffset, offset, length);
  }

  private async readAligned(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    const step = this.maxRequest();
    const parts: Promise<void>[] = [];
    for (let done = 0; done < length; done += step) {
      const n = Math.min(step, length - done);
      parts.push(this.request<void>((cookie, resolve, reject) => ({ kind: 'read', cookie, offset: offset + done, length: n, target, targetOffset: targetOffset + done, covered: [], resolve, reject }), CMD_READ));
    }
    // Wait for every part even when one fails, so none writes into `target` after we returned.
    const results = await Promise.allSettled(parts);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * base:allocation descriptors from `offset`, covering at most `length`
   * bytes (the server may describe less). Only when `info.baseAllocation`.
   */
  async blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    if (!this.info.baseAllocation) throw new NbdConnectionError(this.name, 'block status was not negotiated with this server');
    this.checkRange(offset, length);
    if (length === 0) return [];
    const min = this.info.minBlockSize;
    const start = Math.floor(offset / min) * min;
    let end = Math.min(Math.ceil((offset + length) / min) * min, this.info.size);
    end = Math.min(end, start + Math.floor(MAX_STATUS_REQUEST / min) * min);
    const got = await this.request<BlockStatusExtent[]>((cookie, resolve, reject) => ({ kind: 'status', cookie, offset: start, length: end - start, extents: [], resolve, reject }), CMD_BLOCK_STATUS);
    // Clip the aligned answer back to what was asked.
    const out: BlockStatusExtent[] = [];
    for (const e of got) {
      const s = Math.max(e.offset, offset);
      const t = Math.min(e.offset + e.length, offset + length);
      if (t > s) out.push({ offset: s, length: t - s, flags: e.flags });
    }
    if (!out.length) throw new NbdProtocolError(this.name, `block status at ${offset} described nothing of the requested range`);
    return out;
  }

  /** Send NBD_CMD_DISC and close the socket. Pending requests fail with NbdClosedError. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fatal(new NbdClosedError(this.name));
    if (!this.socket.destroyed) {
      this.socket.write(requestHeader(CMD_DISC, 0, 0, 0));
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 1000);
      await this.closedPromise;
      clearTimeout(t);
    }
  }

  private maxRequest(): number {
    const min = this.info.minBlockSize;
    const max = Math.min(this.info.maxBlockSize, MAX_REQUEST_BYTES);
    return Math.max(min, Math.floor(max / min) * min);
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.info.size) {
      throw new BlockRangeError(this.name, offset, length, this.info.size);
    }
  }

  private async request<T>(make: (cookie: number, resolve: (v: T) => void, reject: (e: Error) => void) => Pending, command: number): Promise<T> {
    if (this.failure) throw this.failure;
    if (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.queue.push(r));
    if (this.failure) {
      this.release();
      throw this.failure;
    }
    this.inFlight++;
    try {
      return await new Promise<T>((resolve, reject) => {
        const cookie = this.nextCookie++;
        const p = make(cookie, resolve as (v: T) => void, reject);
        this.pending.set(cookie, p);
        if (this.requestTimeoutMs) {
          const ms = this.requestTimeoutMs;
          p.timer = setTimeout(() => this.fatal(new NbdTimeoutError(this.name, `an NBD request (${p.length} bytes at ${p.offset})`, ms)), ms);
        }
        this.socket.write(requestHeader(command, cookie, p.offset, p.length));
      });
    } finally {
      this.inFlight--;
      this.release();
    }
  }

  private release(): void {
    const next = this.queue.shift();
    next?.();
  }

  /** End the connection: every pending and later request fails with `err`. */
  private fatal(err: Error): void {
    if (!this.failure) this.failure = err;
    this.reader.fail(this.failure);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
    this.pending.clear();
    for (const q of this.queue.splice(0)) q();
    if (!(err instanceof NbdClosedError)) this.socket.destroy();
  }

  private protocol(reason: string): never {
    const err = new NbdProtocolError(this.name, reason);
    this.fatal(err);
    throw err;
  }

  private async replyLoop(): Promise<void> {
    try {
      for (;;) {
        const magic = (await this.reader.read(4)).readUInt32BE(0);
        if (magic === SIMPLE_REPLY_MAGIC) await this.simpleReply();
        else if (magic === STRUCTURED_REPLY_MAGIC) await this.structuredChunk();
        else this.protocol(`reply magic 0x${magic.toString(16).padStart(8, '0')} is neither a simple nor a structured reply`);
      }
    } catch (err) {
      this.fatal(err as Error);
    }
  }

  private lookup(cookieBuf: Buffer, at: number): Pending {
    const cookie = cookieBuf.readBigUInt64BE(at);
    const p = cookie <= BigInt(Number.MAX_SAFE_INTEGER) ? this.pending.get(Number(cookie)) : undefined;
    if (!p) this.protocol(`a reply for cookie ${cookie}, which no pending request has`);
    return p;
  }

  private finish(p: Pending): void {
    this.pending.delete(p.cookie);
    clearTimeout(p.timer);
  }

  private async simpleReply(): Promise<void> {
    const h = await this.reader.read(12);
    const errno = h.readUInt32BE(0);
    const p = this.lookup(h, 4);
    if (errno !== 0) {
      this.finish(p);
      p.reject(new NbdCommandError(this.name, p.kind === 'read' ? 'read' : 'block status', p.offset, p.length, errno));
      return;
    }
    if (p.kind !== 'read') this.protocol('a simple reply without error to a block-status request (it needs a structured reply)');
    if (this.info.structuredReplies) this.protocol('a simple reply with data to a read, after structured replies were negotiated');
    // The data is as long as the request, a length we chose and bounded.
    const data = await this.reader.read(p.length);
    data.copy(p.target, p.targetOffset);
    this.finish(p);
    p.resolve();
  }

  private async structuredChunk(): Promise<void> {
    if (!this.info.structuredReplies) this.protocol('a structured reply, which was not negotiated');
    const h = await this.reader.read(16);
    const flags = h.readUInt16BE(0);
    const type = h.readUInt16BE(2);
    const p = this.lookup(h, 4);
    const len = h.readUInt32BE(12);
    const done = (flags & REPLY_FLAG_DONE) !== 0;
    const what = p.kind === 'read' ? 'read' : 'block status';

    if (type === CHUNK_NONE) {
      if (len !== 0) this.protocol(`a NONE chunk of ${len} bytes (it must be empty)`);
      if (!done) this.protocol('a NONE chunk without the DONE flag');
    } else if (type === CHUNK_OFFSET_DATA) {
      if (p.kind !== 'read') this.protocol('a data chunk in reply to a block-status request');
      if (len < 9 || len - 8 > p.length) this.protocol(`a data chunk of ${len} bytes for a read of ${p.length}`);
      const at = this.chunkOffset(await this.reader.read(8), p, len - 8);
      const data = await this.reader.read(len - 8);
      data.copy(p.target, p.targetOffset + (at - p.offset));
      this.cover(p, at, len - 8);
    } else if (type === CHUNK_OFFSET_HOLE) {
      if (p.kind !== 'read') this.protocol('a hole chunk in reply to a block-status request');
      if (len !== 12) this.protocol(`a hole chunk of ${len} bytes (it must be 12)`);
      const b = await this.reader.read(12);
      const size = b.readUInt32BE(8);
      if (size === 0) this.protocol('a hole chunk of 0 bytes');
      const at = this.chunkOffset(b, p, size);
      p.target.fill(0, p.targetOffset + (at - p.offset), p.targetOffset + (at - p.offset) + size);
      this.cover(p, at, size);
    } else if (type === CHUNK_BLOCK_STATUS) {
      if (p.kind !== 'status') this.protocol('a block-status chunk in reply to a read');
      if (len < 12 || (len - 4) % 8 !== 0 || (len - 4) / 8 > MAX_DESCRIPTORS) this.protocol(`a block-status chunk of ${len} bytes`);
      if (p.extents.length) this.protocol('a second block-status chunk for one request');
      const b = await this.reader.read(len);
      const id = b.readUInt32BE(0);
      if (id !== this.metaContextId) this.protocol(`block status for context ${id}, which was not negotiated`);
      let pos = p.offset;
      const end = p.offset + p.length;
      for (let i = 4; i < len && pos < end; i += 8) {
        const n = b.readUInt32BE(i);
        if (n === 0) this.protocol('a block-status descriptor of length 0');
        const take = Math.min(n, end - pos);
        p.extents.push({ offset: pos, length: take, flags: b.readUInt32BE(i + 4) });
        pos += take;
      }
    } else if (type & CHUNK_ERROR_BIT) {
      const extra = type === CHUNK_ERROR_OFFSET ? 8 : 0;
      if (len < 6 + extra || len > 6 + MAX_ERROR_MESSAGE + extra) this.protocol(`an error chunk of ${len} bytes`);
      const b = await this.reader.read(len);
      const errno = b.readUInt32BE(0);
      const msgLen = b.readUInt16BE(4);
      if (type !== CHUNK_ERROR && type !== CHUNK_ERROR_OFFSET) {
        // An error type we do not know: still an error; its message layout is the common one when it fits.
      } else if (6 + msgLen + extra !== len) this.protocol(`an error chunk whose message length ${msgLen} disagrees with its size ${len}`);
      if (errno === 0) this.protocol('an error chunk with error number 0');
      const message = 6 + msgLen <= len ? b.subarray(6, 6 + msgLen).toString('utf8').replace(/[^\x20-\x7e]/g, '?') : '';
      let offset = p.offset;
      let length = p.length;
      if (type === CHUNK_ERROR_OFFSET) {
        offset = this.chunkOffset(b.subarray(6 + msgLen), p, 1);
        length = p.offset + p.length - offset;
      }
      p.error ??= new NbdCommandError(this.name, what, offset, length, errno, message);
    } else {
      this.protocol(`a chunk of unknown type ${type}`);
    }

    if (!done) return;
    // Checked while the request is still pending, so that a protocol error fails it too.
    if (!p.error && p.kind === 'read') {
      const got = p.covered.reduce((s, [, n]) => s + n, 0);
      if (got !== p.length) this.protocol(`a read of ${p.length} bytes at ${p.offset} was answered with ${got} bytes`);
    }
    if (!p.error && p.kind === 'status' && !p.extents.length) this.protocol(`block status at ${p.offset} was answered without descriptors`);
    this.finish(p);
    if (p.error) p.reject(p.error);
    else if (p.kind === 'read') p.resolve();
    else p.resolve(p.extents);
  }

  /** The 64-bit offset at the start of `b`, checked to lie with `n` bytes inside request `p`. */
  private chunkOffset(b: Buffer, p: Pending, n: number): number {
    const raw = b.readBigUInt64BE(0);
    const at = raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : -1;
    if (at < p.offset || at + n > p.offset + p.length) this.protocol(`a chunk for offset ${raw} (+${n}) outside its request (${p.length} bytes at ${p.offset})`);
    return at;
  }

  /**
   * Record that [at, at + n) of read `p` arrived. Intervals are kept sorted
   * and merged, so chunks in order (what servers send) stay one interval;
   * an overlap is a protocol error, and so is a server that scatters more
   * separate pieces than any honest one would.
   */
  private cover(p: PendingRead, at: number, n: number): void {
    const c = p.covered;
    const last = c[c.length - 1];
    if (!last || at >= last[0] + last[1]) {
      if (last && at === last[0] + last[1]) last[1] += n;
      else c.push([at, n]);
    } else {
      // Out of order: find the first interval that starts after `at`.
      let lo = 0;
      let hi = c.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (c[mid][0] <= at) lo = mid + 1;
        else hi = mid;
      }
      const prev = c[lo - 1];
      const next = c[lo];
      if ((prev && prev[0] + prev[1] > at) || (next && at + n > next[0])) this.protocol(`overlapping chunks at offset ${at} in the reply to one read`);
      c.splice(lo, 0, [at, n]);
    }
    if (c.length > 65536) this.protocol('a read answered in more than 65536 scattered chunks');
  }
}

function requestHeader(command: number, cookie: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(0, 4);
  b.writeUInt16BE(command, 6);
  b.writeBigUInt64BE(BigInt(cookie), 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

function optionRequest(option: number, data: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeBigUInt64BE(IHAVEOPT, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

interface OptionReply {
  type: number;
  data: Buffer;
}

async function readOptionReply(reader: SocketReader, name: string, option: number): Promise<OptionReply> {
  const h = await reader.read(20);
  const magic = h.readBigUInt64BE(0);
  if (magic !== OPT_REPLY_MAGIC) throw new NbdProtocolError(name, `option reply magic 0x${magic.toString(16)} is wrong`);
  const echoed = h.readUInt32BE(8);
  if (echoed !== option) throw new NbdProtocolError(name, `a reply for option ${echoed} while ${optionName(option)} was asked`);
  const type = h.readUInt32BE(12);
  const len = h.readUInt32BE(16);
  if (len > MAX_OPTION_REPLY) throw new NbdProtocolError(name, `an option reply of ${len} bytes (more than ${MAX_OPTION_REPLY})`);
  return { type, data: await reader.read(len) };
}

function replyError(name: string, option: number, r: OptionReply): NbdOptionError {
  return new NbdOptionError(name, optionName(option), r.type, r.data.subarray(0, MAX_ERROR_MESSAGE).toString('utf8').replace(/[^\x20-\x7e]/g, '?'));
}

function lengthPrefixed(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length, 0);
  return Buffer.concat([l, b]);
}

async function handshake(socket: Socket, reader: SocketReader, name: string, exportName: string, wantStatus: boolean): Promise<{ info: NbdExportInfo; contextId: number | undefined }> {
  const greeting = await reader.read(18);
  const m1 = greeting.readBigUInt64BE(0);
  const m2 = greeting.readBigUInt64BE(8);
  if (m1 !== NBDMAGIC) throw new NbdProtocolError(name, `the greeting does not start with NBDMAGIC (got 0x${m1.toString(16)})`);
  if (m2 === OLDSTYLE_MAGIC) throw new NbdProtocolError(name, 'the server speaks the oldstyle handshake, which guestlens does not support');
  if (m2 !== IHAVEOPT) throw new NbdProtocolError(name, `the greeting has magic 0x${m2.toString(16)} where IHAVEOPT belongs`);
  const serverFlags = greeting.readUInt16BE(16);
  if (!(serverFlags & FLAG_FIXED_NEWSTYLE)) throw new NbdProtocolError(name, 'the server does not offer the fixed newstyle handshake');
  const clientFlags = Buffer.alloc(4);
  clientFlags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES), 0);
  socket.write(clientFlags);

  // Structured replies: optional.
  socket.write(optionRequest(OPT_STRUCTURED_REPLY, Buffer.alloc(0)));
  const sr = await readOptionReply(reader, name, OPT_STRUCTURED_REPLY);
  if (sr.type !== REP_ACK && !(sr.type & REP_ERROR_BIT)) throw new NbdProtocolError(name, `reply type ${sr.type} to NBD_OPT_STRUCTURED_REPLY`);
  if (sr.type === REP_ACK && sr.data.length) throw new NbdProtocolError(name, 'an ACK with a payload');
  const structured = sr.type === REP_ACK;

  // base:allocation: only meaningful with structured replies.
  let contextId: number | undefined;
  if (structured && wantStatus) {
    const query = Buffer.concat([lengthPrefixed(exportName), Buffer.from([0, 0, 0, 1]), lengthPrefixed(BASE_ALLOCATION)]);
    socket.write(optionRequest(OPT_SET_META_CONTEXT, query));
    for (let i = 0; ; i++) {
      if (i > 16) throw new NbdProtocolError(name, 'more meta contexts than were asked for');
      const r = await readOptionReply(reader, name, OPT_SET_META_CONTEXT);
      if (r.type === REP_ACK) break;
      if (r.type & REP_ERROR_BIT) break; // No block status: extents fall back to 'data'.
      if (r.type !== REP_META_CONTEXT || r.data.length < 4) throw new NbdProtocolError(name, `reply type ${r.type} (${r.data.length} bytes) to NBD_OPT_SET_META_CONTEXT`);
      if (r.data.subarray(4).toString('utf8') === BASE_ALLOCATION) contextId = r.data.readUInt32BE(0);
    }
  }

  // GO: export name, then the information we want.
  const go = Buffer.concat([lengthPrefixed(exportName), Buffer.from([0, 2, 0, INFO_EXPORT, 0, INFO_BLOCK_SIZE])]);
  socket.write(optionRequest(OPT_GO, go));
  let size: number | undefined;
  let tflags = 0;
  let minBlock = 1;
  let prefBlock = 4096;
  let maxBlock = MAX_REQUEST_BYTES;
  for (let i = 0; ; i++) {
    if (i > 64) throw new NbdProtocolError(name, 'too many replies to NBD_OPT_GO');
    const r = await readOptionReply(reader, name, OPT_GO);
    if (r.type & REP_ERROR_BIT) throw replyError(name, OPT_GO, r);
    if (r.type === REP_ACK) break;
    if (r.type !== REP_INFO || r.data.length < 2) throw new NbdProtocolError(name, `reply type ${r.type} (${r.data.length} bytes) to NBD_OPT_GO`);
    const info = r.data.readUInt16BE(0);
    if (info === INFO_EXPORT) {
      if (r.data.length !== 12) throw new NbdProtocolError(name, `export information of ${r.data.length} bytes (it must be 12)`);
      size = toSafeNumber(r.data.readBigUInt64BE(2), `${name}: export size`);
      tflags = r.data.readUInt16BE(10);
    } else if (info === INFO_BLOCK_SIZE) {
      if (r.data.length !== 14) throw new NbdProtocolError(name, `block size information of ${r.data.length} bytes (it must be 14)`);
      minBlock = r.data.readUInt32BE(2);
      prefBlock = r.data.readUInt32BE(6);
      maxBlock = r.data.readUInt32BE(10);
      const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
      if (!pow2(minBlock) || minBlock > MAX_MIN_BLOCK || maxBlock < minBlock) {
        throw new NbdProtocolError(name, `absurd block sizes: minimum ${minBlock}, preferred ${prefBlock}, maximum ${maxBlock}`);
      }
    }
    // Other information (name, description) is ignored.
  }
  if (size === undefined) throw new NbdProtocolError(name, 'NBD_OPT_GO succeeded without export information');
  return {
    info: {
      size,
      transmissionFlags: tflags,
      readOnly: (tflags & TRANSMISSION_FLAG_READ_ONLY) !== 0,
      minBlockSize: minBlock,
      preferredBlockSize: prefBlock,
      maxBlockSize: maxBlock,
      structuredReplies: structured,
      baseAllocation: contextId !== undefined,
    },
    contextId,
  };
}
