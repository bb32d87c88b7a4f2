import { buildKernelImage } from './test/filesystems/xfs/xfsFixtures.ts';
const image = await buildKernelImage({ name: 'x', mkfsArgs: ['-n', 'size=65536', '-i', 'size=1024'], size: '1G', bigtime: true, extras: { bigDirEntries: 9000, holeExtents: 400, interleavedAppends: 60 } });
console.log(image);
