import { RawFileSource } from '@guestlens/qcow2-js';
import { openBtrfs } from './src/filesystems/btrfs/index.ts';
const src = await RawFileSource.open(process.argv[2]);
const fs = await openBtrfs(src as any, process.argv[3] ? { subvolume: isNaN(+process.argv[3]) ? process.argv[3] : +process.argv[3] } : {});
console.log(await fs.statfs(), fs.warnings);
console.log(await fs.subvolumes());
const walk = async (ino: number, p: string) => {
  for (const e of await fs.readdir(ino)) {
    const st = await fs.getattr(e.ino);
    let extra = '';
    if (st.type === 'file') { const b = await fs.read(e.ino, 0, st.size); extra = (await import('node:crypto')).createHash('md5').update(b).digest('hex'); }
    if (st.type === 'symlink') extra = await fs.readlink(e.ino);
    console.log(p + e.name, e.ino, st.type, st.size, st.blocks, extra);
    if (st.type === 'directory') await walk(e.ino, p + e.name + '/');
  }
};
await walk(fs.rootIno, '/');
