/**
 * NbdClient / NbdSource against a fake NBD server written here: first a
 * well-behaved one (simple and structured replies, out-of-order pipelined
 * replies, block sizes), then hostile ones speaking garbage. Every hostile
 * case must end in a clear error, quickly, without allocating what the
 * server asks for.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { NbdClient, NbdSource, NbdProtocolError, NbdTimeoutError, NbdOptionError, NbdCommandError, NbdConnectionError } from '@guestlens/nbd';
import { scratchDir } from '../../../test/support/scratch.ts';

const IHAVEOPT = Buffer.from('IHAVEOPT');
const SIZE = 1024 * 1024;
const byteAt = (i: number) => (i * 7 + 3) & 0xff;
function content(offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = byteAt(offset + i);
  return b;
}

interface Request {
  type: number;
  cookie: bigint;
  offset: number;
  length: number;
}

interface FakeOptions {
  /** Replace the whole server side: gets the raw socket. */
  raw?: (s: Socket) => void;
  structured?: boolean;
  blockSizes?: [number, number, number];
  goError?: { type: number; message: string };
  onRequest?: (s: Socket, r: Request, all: Request[]) => void;
}

function optReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(20);
  h.writeBigUInt64BE(0x0003e889045565a9n, 0);
  h.writeUInt32BE(option, 8);
  h.writeUInt32BE(type >>> 0, 12);
  h.writeUInt32BE(data.length, 16);
  return Buffer.concat([h, data]);
}

export function simpleReply(cookie: bigint, error = 0, data?: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(0x67446698, 0);
  h.writeUInt32BE(error, 4);
  h.writeBigUInt64BE(cookie, 8);
  return data ? Buffer.concat([h, data]) : h;
}

function chunk(cookie: bigint, type: number, payload: Buffer, done: boolean, declaredLength = payload.length): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt32BE(0x668e33ef, 0);
  h.writeUInt16BE(done ? 1 : 0, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(cookie, 8);
  h.writeUInt32BE(declaredLength, 16);
  return Buffer.concat([h, payload]);
}

function dataChunk(cookie: bigint, offset: number, data: Buffer, done: boolean): Buffer {
  const o = Buffer.alloc(8);
  o.writeBigUInt64BE(BigInt(offset));
  return chunk(cookie, 1, Buffer.concat([o, data]), done);
}

/** A fake server speaking the fixed newstyle handshake, then handing requests to `onRequest`. */
async function fakeServer(options: FakeOptions): Promise<{ path: string; server: Server; requests: Request[] }> {
  const path = join(scratchDir('fake-nbd'), 'sock');
  const requests: Request[] = [];
  const server = createServer((s) => {
    s.on('error', () => {});
    if (options.raw) return options.raw(s);
    const greeting = Buffer.alloc(18);
    Buffer.from('NBDMAGIC').copy(greeting, 0);
    IHAVEOPT.copy(greeting, 8);
    greeting.writeUInt16BE(3, 16);
    s.write(greeting);
    let buf = Buffer.alloc(0);
    let stage: 'flags' | 'options' | 'transmission' = 'flags';
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (stage === 'flags') {
          if (buf.length < 4) return;
          buf = buf.subarray(4);
          stage = 'options';
        } else if (stage === 'options') {
          if (buf.length < 16) return;
          const len = buf.readUInt32BE(12);
          if (buf.length < 16 + len) return;
          const opt = buf.readUInt32BE(8);
          buf = buf.subarray(16 + len);
          if (opt === 8) s.write(optReply(8, options.structured === false ? 0x80000001 : 1));
          else if (opt === 10) {
            const ctx = Buffer.alloc(4);
            ctx.writeUInt32BE(5);
            s.write(Buffer.concat([optReply(10, 4, Buffer.concat([ctx, Buffer.from('base:allocation')])), optReply(10, 1)]));
          } else if (opt === 7) {
            if (options.goError) {
              s.write(optReply(7, options.goError.type, Buffer.from(options.goError.message)));
              continue;
            }
            const info = Buffer.alloc(12);
            info.writeUInt16BE(0, 0);
            info.writeBigUInt64BE(BigInt(SIZE), 2);
            info.writeUInt16BE(1 | 2, 10);
            const parts = [optReply(7, 3, info)];
            if (options.blockSizes) {
              const bs = Buffer.alloc(14);
              bs.writeUInt16BE(3, 0);
              options.blockSizes.forEach((v, i) => bs.writeUInt32BE(v, 2 + 4 * i));
              parts.push(optReply(7, 3, bs));
            }
            parts.push(optReply(7, 1));
            s.write(Buffer.concat(parts));
            stage = 'transmission';
          } else s.write(optReply(opt, 0x80000001));
        } else {
          if (buf.length < 28) return;
          const r: Request = { type: buf.readUInt16BE(6), cookie: buf.readBigUInt64BE(8), offset: Number(buf.readBigUInt64BE(16)), length: buf.readUInt32BE(24) };
          buf = buf.subarray(28);
          if (r.type === 2) return void s.end();
          requests.push(r);
          options.onRequest?.(s, r, requests);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  servers.push(server);
  return { path, server, requests };
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** An honest reply to a read: data chunks of at most 3000 bytes, a hole where the offset is in the second half. */
function honest(s: Socket, r: Request): void {
  if (r.type === 7) {
    const p = Buffer.alloc(4 + 16);
    p.writeUInt32BE(5, 0);
    const half = Math.min(r.length, Math.max(1, SIZE / 2 - r.offset));
    p.writeUInt32BE(half, 4);
    p.writeUInt32BE(0, 8);
    p.writeUInt32BE(4096, 12);
    p.writeUInt32BE(3, 16);
    return void s.write(chunk(r.cookie, 5, p, true));
  }
  for (let at = 0; at < r.length; at += 3000) {
    const n = Math.min(3000, r.length - at);
    s.write(dataChunk(r.cookie, r.offset + at, content(r.offset + at, n), at + n >= r.length));
  }
}

async function expectError<T extends Error>(p: Promise<unknown>, type: new (...a: never[]) => T, pattern: RegExp, withinMs = 2000): Promise<T> {
  const t = Date.now();
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
  assert.match(err.message, pattern);
  assert.ok(Date.now() - t < withinMs, `took ${Date.now() - t} ms`);
  return err;
}

describe('NbdClient against a fake server', function () {
  describe('a well-behaved server', function () {
    it('pipelined reads answered out of order, split into chunks', async function () {
      const pending: Array<[Socket, Request]> = [];
      const { path } = await fakeServer({
        onRequest: (s, r) => {
          pending.push([s, r]);
          if (pending.length === 3) for (const [so, re] of pending.splice(0).reverse()) honest(so, re);
        },
      });
      const source = await NbdSource.connect({ socketPath: path, name: 'fake' });
      try {
        assert.equal(source.size, SIZE);
        assert.ok(source.info.structuredReplies && source.info.baseAllocation);
        const [a, b, c] = await Promise.all([source.read(10, 7000), source.read(500_000, 1), source.read(SIZE - 9000, 9000)]);
        assert.ok(a.equals(content(10, 7000)) && b.equals(content(500_000, 1)) && c.equals(content(SIZE - 9000, 9000)));
      } finally {
        await source.close();
      }
    });

    it('a read answered in many small data and hole chunks, in reverse order', async function () {
      const { path } = await fakeServer({
        onRequest: (s, r) => {
          const parts: Buffer[] = [];
          for (let at = 0; at < r.length; at += 512) {
            const n = Math.min(512, r.length - at);
            if ((at / 512) % 2) {
              const p = Buffer.alloc(12);
              p.writeBigUInt64BE(BigInt(r.offset + at), 0);
              p.writeUInt32BE(n, 8);
              parts.push(chunk(r.cookie, 2, p, false));
            } else parts.push(dataChunk(r.cookie, r.offset + at, content(r.offset + at, n), false));
          }
          s.write(Buffer.concat([...parts.reverse(), chunk(r.cookie, 0, Buffer.alloc(0), true)]));
        },
      });
      const client = await NbdClient.connect({ socketPath: path, name: 'fake' });
      try {
        const got = await client.read(1000, 900_000);
        const want = content(1000, 900_000);
        for (let at = 512; at < want.length; at += 1024) want.fill(0, at, Math.min(at + 512, want.length));
        assert.ok(got.equals(want));
      } finally {
        await client.close();
      }
    });

    it('respects the block sizes: reads aligned to the minimum and split at the maximum', async function () {
      const { path, requests } = await fakeServer({ blockSizes: [512, 4096, 8192], onRequest: honest });
      const source = await NbdSource.connect({ socketPath: path, name: 'fake' });
      try {
        assert.ok((await source.read(1000, 20_000)).equals(content(1000, 20_000)));
        for (const r of requests) {
          assert.ok(r.length <= 8192 && r.offset % 512 === 0 && r.length % 512 === 0, JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? String(v) : v)));
        }
        assert.equal(requests.reduce((s, r) => s + r.length, 0), 20_992);
        // Block status: hole+zero is 'zero', else 'data'.
        assert.deepEqual(await source.extent(0, SIZE), { offset: 0, length: SIZE / 2, kind: 'data' });
        // From the descriptors the first answer gave (the rest of the range is a hole of 4096 bytes).
        assert.deepEqual(await source.extent(SIZE / 2, 10_000), { offset: SIZE / 2, length: 4096, kind: 'zero' });
        // After refresh() the server is asked again (and this one answers differently).
        const asked = requests.length;
        await source.refresh();
        assert.deepEqual(await source.extent(SIZE / 2, 10_000), { offset: SIZE / 2, length: 1, kind: 'data' });
        assert.equal(requests.length, asked + 1);
      } finally {
        await source.close();
      }
    });

    it('without structured replies: simple replies, and every extent is data', async function () {
      const { path } = await fakeServer({ structured: false, onRequest: (s, r) => s.write(simpleReply(r.cookie, 0, content(r.offset, r.length))) });
      const source = await NbdSource.connect({ socketPath: path, name: 'fake' });
      try {
        assert.ok(!source.info.structuredReplies && !source.info.baseAllocation);
        assert.ok((await source.read(3, 5000)).equals(content(3, 5000)));
        assert.deepEqual(await source.extent(0, SIZE), { offset: 0, length: SIZE, kind: 'data' });
      } finally {
        await source.close();
      }
    });

    it('an error chunk fails that read with the server\'s message; the connection stays usable', async function () {
      const { path } = await fakeServer({
        onRequest: (s, r) => {
          if (r.offset !== 0) return honest(s, r);
          const p = Buffer.alloc(6 + 9);
          p.writeUInt32BE(5, 0);
          p.writeUInt16BE(9, 4);
          p.write('bad block', 6);
          s.write(chunk(r.cookie, 0x8001, p, true));
        },
      });
      const client = await NbdClient.connect({ socketPath: path, name: 'fake' });
      try {
        const err = await expectError(client.read(0, 100), NbdCommandError, /^fake: NBD read of 100 bytes at offset 0 failed on the server: EIO \(bad block\)$/);
        assert.equal(err.code, 'EIO');
        assert.ok((await client.read(4096, 10)).equals(content(4096, 10)));
      } finally {
        await client.close();
      }
    });
  });

  describe('hostile servers', function () {
    it('wrong greeting magic', async function () {
      const { path } = await fakeServer({ raw: (s) => s.write(Buffer.from('HELLOHELLOHELLO!!!')) });
      const err = await expectError(NbdClient.connect({ socketPath: path, name: 'fake' }), NbdProtocolError, /^fake: NBD protocol error: the greeting does not start with NBDMAGIC/);
      assert.equal(err.code, 'EPROTO');
      assert.ok(err.userFacing);
    });

    it('an oldstyle server', async function () {
      const g = Buffer.alloc(18);
      Buffer.from('NBDMAGIC').copy(g);
      g.writeBigUInt64BE(0x0000420281861253n, 8);
      const { path } = await fakeServer({ raw: (s) => s.write(g) });
      await expectError(NbdClient.connect({ socketPath: path, name: 'fake' }), NbdProtocolError, /oldstyle handshake/);
    });

    it('an absurd option reply length is refused before anything is allocated', async function () {
      const g = Buffer.alloc(18);
      Buffer.from('NBDMAGICIHAVEOPT').copy(g);
      g.writeUInt16BE(3, 16);
      const reply = optReply(8, 1);
      reply.writeUInt32BE(0xfffffff0, 16);
      const { path } = await fakeServer({ raw: (s) => { s.write(g); s.once('data', () => s.write(reply)); } });
      await expectError(NbdClient.connect({ socketPath: path, name: 'fake' }), NbdProtocolError, /an option reply of 4294967280 bytes/);
    });

    it('a silent server: the handshake times out', async function () {
      const { path } = await fakeServer({ raw: () => {} });
      const t = Date.now();
      const err = await expectError(NbdClient.connect({ socketPath: path, name: 'fake', handshakeTimeoutMs: 300 }), NbdTimeoutError, /the NBD handshake did not complete within 300 ms/);
      assert.ok(Date.now() - t >= 290);
      assert.equal(err.code, 'ETIMEDOUT');
    });

    it('a server that hangs up during the handshake', async function () {
      const { path } = await fakeServer({ raw: (s) => s.end(Buffer.from('NBDMAG')) });
      await expectError(NbdClient.connect({ socketPath: path, name: 'fake' }), NbdConnectionError, /closed the connection during the handshake/);
    });

    it('no such export: the server\'s refusal, readable', async function () {
      const { path } = await fakeServer({ goError: { type: 0x80000006, message: 'export "nope" not found' } });
      await expectError(NbdClient.connect({ socketPath: path, name: 'fake', exportName: 'nope' }), NbdOptionError, /^fake: NBD option NBD_OPT_GO failed \(NBD_REP_ERR_UNKNOWN\): the server has no export of that name: export "nope" not found$/);
    });

    it('no socket at all', async function () {
      await expectError(NbdClient.connect({ socketPath: join(scratchDir('none'), 'sock'), name: 'fake' }), NbdConnectionError, /cannot connect to .*: ENOENT; no such socket/);
    });

    const transmissionCases: Array<[string, (s: Socket, r: Request) => void, RegExp]> = [
      ['an absurd data chunk length', (s, r) => s.write(chunk(r.cookie, 1, Buffer.alloc(8), true, 0xfffffff0)), /a data chunk of 4294967280 bytes for a read of 100/],
      ['a reply for an unknown cookie', (s, r) => s.write(dataChunk(r.cookie + 999n, r.offset, content(r.offset, r.length), true)), /a reply for cookie \d+, which no pending request has/],
      ['a wrong reply magic', (s) => s.write(Buffer.alloc(40, 0x41)), /reply magic 0x41414141 is neither/],
      ['data outside the request', (s, r) => s.write(dataChunk(r.cookie, r.offset + 50, content(0, 100), true)), /outside its request \(100 bytes at 0\)/],
      ['a reply that stops short', (s, r) => s.write(dataChunk(r.cookie, r.offset, content(0, 60), true)), /a read of 100 bytes at 0 was answered with 60 bytes/],
      ['overlapping chunks', (s, r) => s.write(Buffer.concat([dataChunk(r.cookie, 0, content(0, 60), false), dataChunk(r.cookie, 40, content(40, 60), true)])), /overlapping chunks/],
      ['a chunk of an unknown type', (s, r) => s.write(chunk(r.cookie, 77, Buffer.alloc(4), true)), /a chunk of unknown type 77/],
      ['an error chunk with an absurd message', (s, r) => s.write(chunk(r.cookie, 0x8001, Buffer.alloc(6), true, 1 << 30)), /an error chunk of 1073741824 bytes/],
    ];
    for (const [what, reply, pattern] of transmissionCases) {
      it(`${what}: a protocol error, and the connection is closed`, async function () {
        const { path } = await fakeServer({ onRequest: reply });
        const client = await NbdClient.connect({ socketPath: path, name: 'fake' });
        try {
          const err = await expectError(client.read(0, 100), NbdProtocolError, pattern);
          // Every later request fails the same way, at once.
          assert.equal(await client.read(0, 1).then(() => undefined, (e: unknown) => e), err);
        } finally {
          await client.close();
        }
      });
    }

    it('a server that hangs up in the middle of a read', async function () {
      const { path } = await fakeServer({ onRequest: (s) => s.destroy() });
      const client = await NbdClient.connect({ socketPath: path, name: 'fake' });
      try {
        await expectError(client.read(0, 100), NbdConnectionError, /the NBD server closed the connection/);
      } finally {
        await client.close();
      }
    });

    it('a request that gets no reply: the request timeout', async function () {
      const { path } = await fakeServer({ onRequest: () => {} });
      const client = await NbdClient.connect({ socketPath: path, name: 'fake', requestTimeoutMs: 200 });
      try {
        await expectError(client.read(0, 100), NbdTimeoutError, /an NBD request \(100 bytes at 0\) did not complete within 200 ms/);
      } finally {
        await client.close();
      }
    });
  });
});
