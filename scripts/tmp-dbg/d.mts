import { TailSession } from '/work/wt/seams/bench/tailSession.ts';
import { mkdtempSync } from 'node:fs';
import { execa } from '/work/wt/seams/node_modules/execa/index.js';
const s = await TailSession.create(mkdtempSync('/tmp/dbgt-'), 64);
for (let i = 0; i < 3; i++) for (const args of [['filesystems', '--all', '--long', s.live.image], ['df', s.live.image]]) {
  const r = await execa('/work/wt/seams/cli/bin/guestlens', args, { reject: false });
  console.log('rc', r.exitCode, JSON.stringify(r.stdout.slice(-300)), r.stderr);
}
const r = await execa('sh', ['-c', `qemu-img convert -U -O raw ${s.live.image} /tmp/dbgt.raw && blkid -p /tmp/dbgt.raw; dumpe2fs -h /tmp/dbgt.raw 2>&1 | head -5`], { reject: false }); console.log(r.stdout, r.stderr);
await s.close();
