/**
 * Conformance matrix: images made by the real qemu-img/qemu-io, read over
 * their whole virtual disk, must equal `qemu-img convert -O raw` byte for byte
 * (compared chunk by chunk through SHA-256). Every image is also read through
 * a json: overlay exactly like the one the overlay package makes.
 */
import { join } from 'node:path';
import { assertMatchesQemu, makeJsonOverlay, makeRaw, MiB, qemuImg, qemuIo } from '../../support/qemu.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';

const VIRTUAL_SIZE = 24 * MiB;
/** Where the source disk has data; the rest is a hole. */
const REGIONS: Array<[number, number]> = [
  [0, 3 * MiB],
  [5 * MiB + 4321, 2 * MiB],
  [11 * MiB, 3 * MiB + 512],
  [VIRTUAL_SIZE - 2 * MiB, 2 * MiB],
];

/** Writes of patterns at unaligned offsets, zero writes (with and without unmap), discards, a compressed write. */
function workload(clusterSize: number, options: { compressedWrite?: boolean } = {}): string[] {
  return [
    'write -P 0xa5 1234567 77777',
    'write -z 300001 200003',
    'write -z -u 4M 1M',
    'discard 8M 1M',
    'discard 9437000 100000',
    'write -P 0x5a 10485000 1000',
    ...(options.compressedWrite === false ? [] : [`write -c 16M ${clusterSize}`]),
    `write -P 0x3c ${VIRTUAL_SIZE - 1000} 1000`,
  ];
}

const CLUSTER_SIZES = Array.from({ length: 13 }, (_, i) => 2 ** (9 + i));

function sizeName(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB}M` : bytes >= 1024 ? `${bytes / 1024}k` : `${bytes}`;
}

describe('qcow2-js conformance: our bytes equal qemu-img convert -O raw', function () {
  this.timeout(600_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('conformance');
    source = join(dir, 'source.raw');
    await makeRaw(source, VIRTUAL_SIZE, REGIONS, 7);
  });

  /** Check the image, then an overlay over it named by a json: backing name with locking off. */
  async function check(image: string, chainFiles: string[]): Promise<void> {
    await assertMatchesQemu(image, [image, ...chainFiles]);
    const overlay = `${image}.overlay.qcow2`;
    await makeJsonOverlay(image, 'qcow2', overlay);
    await assertMatchesQemu(overlay, [overlay, image, ...chainFiles]);
  }

  describe('every cluster size from 512 B to 2 MiB', () => {
    for (const clusterSize of CLUSTER_SIZES) {
      it(`v3, cluster_size=${sizeName(clusterSize)}: converted data, then writes, zero writes, discards`, async () => {
        const image = join(dir, `v3-${clusterSize}.qcow2`);
        await qemuImg(['convert', '-q', '-O', 'qcow2', '-o', `cluster_size=${clusterSize}`, source, image]);
        await qemuIo(image, workload(clusterSize));
        await check(image, []);
      });
    }
    for (const clusterSize of [512, 65536, 2 * MiB]) {
      it(`v2 (compat=0.10), cluster_size=${sizeName(clusterSize)}`, async () => {
        const image = join(dir, `v2-${clusterSize}.qcow2`);
        await qemuImg(['convert', '-q', '-O', 'qcow2', '-o', `compat=0.10,cluster_size=${clusterSize}`, source, image]);
        await qemuIo(image, workload(clusterSize));
        await check(image, []);
      });
    }
  });

  describe('compressed clusters (qemu-img convert -c)', () => {
    for (const compression of ['zlib', 'zstd']) {
      for (const clusterSize of [512, 4096, 65536, 2 * MiB]) {
        it(`${compression}, cluster_size=${sizeName(clusterSize)}, then partial overwrites of compressed clusters`, async () => {
          const image = join(dir, `c-${compression}-${clusterSize}.qcow2`);
          await qemuImg(['convert', '-q', '-c', '-O', 'qcow2', '-o', `compression_type=${compression},cluster_size=${clusterSize}`, source, image]);
          await qemuIo(image, workload(clusterSize));
          await check(image, []);
        });
      }
    }
    it('zlib in a v2 image', async () => {
      const image = join(dir, 'c-v2.qcow2');
      await qemuImg(['convert', '-q', '-c', '-O', 'qcow2', '-o', 'compat=0.10', source, image]);
      await check(image, []);
    });
    it('zstd with extended L2 entries', async () => {
      const image = join(dir, 'c-zstd-extl2.qcow2');
      await qemuImg(['convert', '-q', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd,extended_l2=on', source, image]);
      await qemuIo(image, workload(65536));
      await check(image, []);
    });
  });

  describe('extended L2 entries (extended_l2=on): subclusters', () => {
    for (const clusterSize of [16384, 65536, 2 * MiB]) {
      it(`cluster_size=${sizeName(clusterSize)} without a backing file`, async () => {
        const image = join(dir, `extl2-${clusterSize}.qcow2`);
        await qemuImg(['convert', '-q', '-O', 'qcow2', '-o', `extended_l2=on,cluster_size=${clusterSize}`, source, image]);
        await qemuIo(image, workload(clusterSize));
        await check(image, []);
      });
      it(`cluster_size=${sizeName(clusterSize)} over a backing file: partly allocated clusters read the rest from below`, async () => {
        const base = join(dir, `extl2-base-${clusterSize}.qcow2`);
        const image = join(dir, `extl2-top-${clusterSize}.qcow2`);
        await qemuImg(['convert', '-q', '-O', 'qcow2', source, base]);
        await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `extended_l2=on,cluster_size=${clusterSize}`, '-F', 'qcow2', '-b', base, image]);
        await qemuIo(image, [...workload(clusterSize, { compressedWrite: false }), 'write -P 0x61 2049 3000', `write -P 0x62 ${clusterSize + 700} ${clusterSize / 16}`]);
        await check(image, [base]);
      });
    }
  });

  describe('backing chains', () => {
    it('three deep with differing virtual sizes: raw 16M <- qcow2 24M <- qcow2 20M', async () => {
      const base = join(dir, 'chain-base.raw');
      const mid = join(dir, 'chain-mid.qcow2');
      const top = join(dir, 'chain-top.qcow2');
      await makeRaw(base, 16 * MiB, [[0, 6 * MiB], [10 * MiB, 6 * MiB]], 21);
      // A relative backing name (resolved against mid's directory) and an absolute one.
      await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', 'chain-base.raw', mid, '24M']);
      await qemuIo(mid, ['write -P 0x11 1M 1M', 'write -P 0x12 15M 2M', 'write -z 4M 100k', 'discard 11M 1M', 'write -P 0x13 20M 4k']);
      await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', mid, top, '20M']);
      await qemuIo(top, ['write -P 0x21 1536k 1M', 'write -z 10M 512k', 'discard 12M 1M', 'write -P 0x22 19M 1000']);
      await check(top, [mid, base]);
      await check(mid, [base]);
    });

    it('three deep where the top is the largest and the middle the smallest: qcow2 32M <- qcow2 8M <- qcow2 40M', async () => {
      const base = join(dir, 'chain2-base.qcow2');
      const mid = join(dir, 'chain2-mid.qcow2');
      const top = join(dir, 'chain2-top.qcow2');
      const raw = join(dir, 'chain2-source.raw');
      await makeRaw(raw, 32 * MiB, [[0, 32 * MiB]], 31);
      await qemuImg(['convert', '-q', '-c', '-O', 'qcow2', raw, base]);
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', '-F', 'qcow2', '-b', base, mid, '8M']);
      await qemuIo(mid, ['write -P 0x31 100000 5000', 'write -z 2M 64k', 'discard 3M 1M']);
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-F', 'qcow2', '-b', mid, top, '40M']);
      await qemuIo(top, ['write -P 0x41 7M 2M', 'write -P 0x42 33M 1M', 'write -z 300k 1k']);
      await check(top, [mid, base]);
    });
  });

  describe('large, mostly sparse images', () => {
    it('a 4 GiB qcow2 with a little data at far-apart, unaligned offsets', async () => {
      const image = join(dir, 'sparse-4g.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', image, '4G']);
      await qemuIo(image, ['write -P 0x01 0 64k', 'write -P 0x02 1073754321 100000', 'write -z 2147483000 5000', 'write -c 3G 64k', 'write -P 0x04 4294901760 65536']);
      await assertMatchesQemu(image, [image]);
    });

    it('a 5 GiB qcow2 over a 3 GiB qcow2, both mostly sparse', async () => {
      const base = join(dir, 'sparse-3g.qcow2');
      const image = join(dir, 'sparse-5g.qcow2');
      await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=2M', base, '3G']);
      await qemuIo(base, ['write -P 0x50 0 1M', 'write -P 0x53 2147484425 1M', 'write -P 0x54 3219000000 1000000']);
      await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, image, '5G']);
      await qemuIo(image, ['write -P 0x51 2147483648 4096', 'write -P 0x52 3221225000 2000', 'discard 0 64k']);
      await assertMatchesQemu(image, [image, base]);
    });
  });
});
