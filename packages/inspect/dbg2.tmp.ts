import { withKernelMount, walkMounted } from '../../test/support/kernel.ts';
const image = process.argv[2];
await withKernelMount(image, {}, async (m) => {
  let t = Date.now();
  const a = await walkMounted(m.dir, { maxHashBytes: 64 << 20 });
  console.log('plain walk', a.length, Date.now() - t);
  t = Date.now();
  const b = await walkMounted(m.dir, { maxHashBytes: 64 << 20, times: true, birthTime: true, devices: true });
  console.log('again', b.length, Date.now() - t);
});
