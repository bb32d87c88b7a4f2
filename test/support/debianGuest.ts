/**
 * A real Debian guest for the forensic and inspection tests: a minimal
 * Debian 12 root made by debootstrap (the real dpkg database, binaries,
 * os-release), on a GPT disk with an ESP, a separate /boot and /var, and an
 * fstab that names them by UUID=, LABEL= and PARTUUID=. Made once per test
 * run (a minute or two) and shared. Where debootstrap cannot reach a Debian
 * mirror, the root is assembled from this Debian host's own files instead
 * (its os-release, dpkg database and /bin/dash), and the reason is printed.
 *
 * Extra entries make it a forensic fixture: symlinks to /etc/shadow and
 * ../../.., a file named "..\n", names with control characters and bytes
 * that are not UTF-8, a sparse file, hard links, extended attributes, a FIFO
 * and a device node.
 */
import { execa } from 'execa';
import { chmodSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { scratchDir } from './scratch.ts';
import { sh } from './run.ts';

const MiB = 1024 * 1024;

export interface DebianGuest {
  disk: string;
  /** How the root was made: 'debootstrap' or the reason it could not be. */
  origin: string;
  hostname: string;
  partitions: { esp: Part; boot: Part; root: Part; var: Part };
  rootUuid: string;
}

interface Part {
  number: number;
  offset: number;
  size: number;
  device: string;
}

let made: Promise<DebianGuest> | undefined;

export function debianGuest(): Promise<DebianGuest> {
  made ??= build();
  return made;
}

async function debootstrap(target: string): Promise<string> {
  const r = await execa('debootstrap', ['--variant=minbase', 'bookworm', target, 'http://deb.debian.org/debian'], { reject: false, timeout: 600_000 });
  if (r.exitCode === 0) return 'debootstrap';
  return `debootstrap failed (${(r.stderr || r.stdout).trim().split('\n').pop()}); assembled from this Debian host's files`;
}

/** The fallback root: real Debian files of this host. */
function hostRoot(target: string): void {
  for (const d of ['etc', 'usr/lib', 'usr/bin', 'var/lib/dpkg', 'boot', 'var/log']) mkdirSync(join(target, d), { recursive: true });
  copyFileSync('/usr/lib/os-release', join(target, 'usr/lib/os-release'));
  symlinkSync('../usr/lib/os-release', join(target, 'etc/os-release'));
  copyFileSync('/etc/debian_version', join(target, 'etc/debian_version'));
  copyFileSync('/var/lib/dpkg/status', join(target, 'var/lib/dpkg/status'));
  copyFileSync('/usr/bin/dash', join(target, 'usr/bin/dash'));
  symlinkSync('usr/bin', join(target, 'bin'));
  symlinkSync('dash', join(target, 'usr/bin/sh'));
  writeFileSync(join(target, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n');
  chmodSync(join(target, 'etc/shadow'), 0o640);
}

function forensicExtras(root: string): void {
  const x = join(root, 'srv/forensic');
  mkdirSync(x, { recursive: true });
  symlinkSync('/etc/shadow', join(x, 'to-shadow'));
  symlinkSync('../../..', join(x, 'up-up-up'));
  symlinkSync('../../../../../../../../etc/passwd', join(x, 'far-up'));
  writeFileSync(join(x, '..\n'), 'a file named dot dot newline\n');
  writeFileSync(join(x, 'esc\x1b[31mred'), 'a name with a terminal escape\n');
  writeFileSync(Buffer.concat([Buffer.from(`${x}/latin1-`), Buffer.from([0xe9, 0xff]), Buffer.from('.txt')]), 'not UTF-8\n');
  writeFileSync(join(x, 'tab\there'), 'tab\n');
  writeFileSync(join(x, 'pipe|name'), 'pipe\n');
  writeFileSync(join(x, 'hard-a'), 'linked twice\n');
  linkSync(join(x, 'hard-a'), join(x, 'hard-b'));
  writeFileSync(join(x, 'mode-4755'), '#!/bin/sh\n');
  chmodSync(join(x, 'mode-4755'), 0o4755);
  mkdirSync(join(x, 'readonly-dir'));
  writeFileSync(join(x, 'readonly-dir/inside'), 'inside\n');
  chmodSync(join(x, 'readonly-dir'), 0o555);
}

async function build(): Promise<DebianGuest> {
  const dir = scratchDir('debian-guest');
  let root = join(dir, 'root');
  mkdirSync(root);
  const origin = await debootstrap(root);
  if (origin !== 'debootstrap') {
    // A half-made root is left where it is (debootstrap may have mounted things in it); the fallback gets a fresh one.
    console.log(`      (Debian guest: ${origin})`);
    root = join(dir, 'host-root');
    mkdirSync(root);
    hostRoot(root);
  }
  const hostname = 'forensic-deb';
  writeFileSync(join(root, 'etc/hostname'), `${hostname}\n`);
  writeFileSync(join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
  forensicExtras(root);
  mkdirSync(join(root, 'srv/data'), { recursive: true });
  // A sparse file and a FIFO, and a device node, made in the tree mkfs copies.
  await sh('truncate', ['-s', '64M', join(root, 'srv/forensic/sparse')]);
  await sh('dd', ['if=/dev/urandom', `of=${join(root, 'srv/forensic/sparse')}`, 'bs=4096', 'seek=4000', 'count=2', 'conv=notrunc', 'status=none']);
  await sh('mkfifo', [join(root, 'srv/forensic/fifo')]);
  await sh('mknod', [join(root, 'srv/forensic/null-dev'), 'c', '1', '3']);
  await sh('setfattr', ['-n', 'user.comment', '-v', 'guest xattr', join(root, 'srv/forensic/hard-a')]);
  // /var and /boot go on filesystems of their own.
  const varTree = join(dir, 'var');
  const bootTree = join(dir, 'boot');
  renameSync(join(root, 'var'), varTree);
  mkdirSync(join(root, 'var'));
  mkdirSync(bootTree, { recursive: true });
  if (existsSync(join(root, 'boot'))) {
    cpSync(join(root, 'boot'), bootTree, { recursive: true });
    rmSync(join(root, 'boot'), { recursive: true, force: true });
  }
  mkdirSync(join(root, 'boot'));
  writeFileSync(join(bootTree, 'vmlinuz-6.1.0-fake'), Buffer.alloc(200_000, 0x11));
  const rootUuid = randomUUID();
  const varUuid = randomUUID();
  const raw = join(dir, 'debian.raw');
  await sh('truncate', ['-s', `${(1 + 32 + 64 + 768 + 320 + 1) * MiB}`, raw]);
  await sh('sgdisk', ['-n', '1:2048:+32M', '-t', '1:EF00', '-c', '1:EFI System', '-n', '2:0:+64M', '-t', '2:8300', '-c', '2:boot', '-n', '3:0:+768M', '-t', '3:8300', '-c', '3:root', '-n', '4:0:+320M', '-t', '4:8300', '-c', '4:var', raw]);
  const info = JSON.parse(await sh('sfdisk', ['--json', raw])) as { partitiontable: { partitions: { node: string; start: number; size: number; uuid: string }[] } };
  const parts = info.partitiontable.partitions.map((p, i) => ({ number: i + 1, offset: p.start * 512, size: p.size * 512, device: `/dev/sda${i + 1}`, uuid: p.uuid }));
  writeFileSync(
    join(root, 'etc/fstab'),
    // virt-inspector follows UUID= and LABEL=; PARTUUID= and /dev/disk/by-* are ours to test (on /srv/data, a second view of /var).
    `# /etc/fstab of a forensic fixture\nUUID=${rootUuid} / ext4 errors=remount-ro 0 1\nLABEL=BOOT /boot ext2 defaults 0 2\nUUID=${varUuid} /var ext4 defaults 0 2\nUUID=1234-ABCD /boot/efi vfat umask=0077 0 1\n/dev/disk/by-partuuid/${parts[3].uuid.toLowerCase()} /srv/data ext4 defaults 0 2\n/dev/sdz9 /nowhere ext4 defaults 0 2\nproc /proc proc defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n`,
  );
  const part = async (name: string, size: number, mkfs: string[]) => {
    const file = join(dir, `${name}.img`);
    await sh('truncate', ['-s', String(size), file]);
    await sh(mkfs[0], [...mkfs.slice(1), file]);
    return file;
  };
  const esp = await part('esp', parts[0].size, ['mkfs.vfat', '-F', '32', '-n', 'EFI', '-i', '1234ABCD']);
  const boot = await part('boot', parts[1].size, ['mkfs.ext2', '-q', '-F', '-L', 'BOOT', '-d', bootTree]);
  const rootImg = await part('root', parts[2].size, ['mkfs.ext4', '-q', '-F', '-L', 'root', '-U', rootUuid, '-d', root]);
  const varImg = await part('var', parts[3].size, ['mkfs.ext4', '-q', '-F', '-L', 'var', '-U', varUuid, '-d', varTree]);
  for (const [img, p] of [[esp, parts[0]], [boot, parts[1]], [rootImg, parts[2]], [varImg, parts[3]]] as const) {
    await sh('dd', [`if=${img}`, `of=${raw}`, 'bs=1M', `seek=${p.offset / MiB}`, 'conv=notrunc,sparse', 'status=none']);
    rmSync(img);
  }
  rmSync(root, { recursive: true, force: true });
  rmSync(varTree, { recursive: true, force: true });
  return {
    disk: raw,
    origin,
    hostname,
    rootUuid,
    partitions: { esp: parts[0], boot: parts[1], root: parts[2], var: parts[3] },
  };
}
