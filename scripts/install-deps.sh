#!/usr/bin/env bash
# Installs everything guestlens and its test suite need on Debian 12 with Node 20:
# the real QEMU tools and mkfs/partitioning tools (from Debian, only when missing),
# pnpm, the workspace's dependencies (from the lockfile), and the CLI bundle.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.8   # pnpm 11+ needs Node 22; pnpm 12 ignores -s for scripts.

# Debian package -> one command it provides (checked with command -v).
declare -A debs=(
  [qemu-utils]=qemu-img
  [qemu-system-common]=qemu-storage-daemon
  [qemu-system-x86]=qemu-system-x86_64
  [e2fsprogs]=mkfs.ext4
  [xfsprogs]=mkfs.xfs
  [dosfstools]=mkfs.vfat
  [mtools]=mcopy
  [ntfs-3g]=mkfs.ntfs
  [btrfs-progs]=mkfs.btrfs
  [attr]=setfattr              # tests: xattrs of fixtures (NTFS reparse points and DOS names, btrfs, XFS, ext) and getfattr as an oracle
  [acl]=setfacl                # tests: POSIX ACLs made through the kernel (XFS, ext)
  [g++]=g++                    # pnpm install builds the lzo package (minilzo, for btrfs) against Node's headers
  [make]=make
  [lvm2]=pvcreate
  [thin-provisioning-tools]=thin_restore   # tests: thin pool metadata written and dumped
  [fdisk]=sfdisk
  [gdisk]=sgdisk
  [fuse3]=fusermount3
  [mount]=losetup
  [util-linux]=setpriv
  [procps]=ps
  [hyperfine]=hyperfine
  [time]=/usr/bin/time
  [strace]=strace              # tests: our fcntl calls against QEMU's
  [busybox]=busybox            # tests: path resolution against a chrooted shell
  [python3]=python3            # tests: a foreign POSIX lock holder; sparse-aware image digests
  [libhivex-bin]=hivexregedit  # tests: hivex builds registry hives and is the regf reader's oracle
  [cryptsetup-bin]=cryptsetup  # tests: LUKS volumes for the probe and df
  [sleuthkit]=fls              # timeline tests: The Sleuth Kit's body file is the oracle
  [debootstrap]=debootstrap    # forensics tests: a real Debian guest (falls back to this host's files offline)
  [rpm]=rpm                    # inspect tests: a real RPM database (rpmdb.sqlite) written by rpm itself
  [libguestfs-tools]=virt-df   # only for the tests that compare with virt-df, virt-tail, virt-inspector
  [guestfs-tools]=virt-tail
  [libvirt-clients]=virsh      # df -d DOMAIN; tests use libvirt's built-in test:/// driver
  [systemd]=journalctl         # journal tests: the oracle
  [systemd-journal-remote]=/lib/systemd/systemd-journal-remote  # journal tests: real journal files
  [xz-utils]=xz                # journal tests: XZ-compressed objects
  [prometheus]=promtool        # exporter tests: a real Prometheus scrapes the exporter; promtool checks rules and metrics
)
missing=()
for pkg in "${!debs[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "${debs[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "guestlens setup: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "guestlens setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q "${missing[@]}" >&2
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  echo "guestlens setup: installing pnpm $PNPM_VERSION" >&2
  npm install -g --silent "pnpm@$PNPM_VERSION" >&2
fi

pnpm install --frozen-lockfile --reporter=append-only >&2
pnpm -s build >&2
