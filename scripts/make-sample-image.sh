#!/usr/bin/env bash
# Builds a small sample guest disk with real tools, no loop devices, no root
# needed: a GPT disk with an ext2 /boot, an ext4 root holding a few files, and
# swap; converted to qcow2. Usage: make-sample-image.sh OUTPUT.qcow2
set -euo pipefail
out=${1:?usage: make-sample-image.sh OUTPUT.qcow2}
export PATH="$PATH:/usr/sbin:/sbin"
work=$(mktemp -d "${TMPDIR:-/tmp}/gltest-sample.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Guest files, so the root filesystem is not empty.
root="$work/root"
mkdir -p "$root"/{etc,var/log,home/guest,boot}
echo "sample-guest" > "$root/etc/hostname"
cat > "$root/etc/fstab" <<'FSTAB'
LABEL=root  /      ext4  defaults  0 1
LABEL=boot  /boot  ext2  defaults  0 2
LABEL=swap  none   swap  sw        0 0
FSTAB
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' > "$root/etc/os-release"
for i in $(seq 1 200); do echo "Nov 22 04:00:$((i % 60)) sample-guest kernel: line $i"; done > "$root/var/log/messages"
head -c 3000000 /dev/urandom > "$root/home/guest/data.bin"
ln -s ../var/log/messages "$root/home/guest/messages"
boot="$work/boot"
mkdir -p "$boot"
head -c 500000 /dev/urandom > "$boot/vmlinuz-sample"

MiB=$((1024 * 1024))
# Partition layout in MiB: boot 1..33, root 33..161, swap 161..177; disk 178 MiB.
truncate -s $((178 * MiB)) "$work/disk.raw"
sfdisk --quiet "$work/disk.raw" <<'SFDISK'
label: gpt
start=2048, size=65536, type=linux, name=boot
start=67584, size=262144, type=linux, name=root
start=329728, size=32768, type=swap, name=swap
SFDISK

truncate -s $((32 * MiB)) "$work/boot.img"
mkfs.ext2 -q -F -L boot -d "$boot" "$work/boot.img"
truncate -s $((128 * MiB)) "$work/root.img"
mkfs.ext4 -q -F -L root -d "$root" "$work/root.img"
truncate -s $((16 * MiB)) "$work/swap.img"
mkswap -q -L swap "$work/swap.img" >/dev/null

dd if="$work/boot.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$work/disk.raw" bs=1M seek=33 conv=notrunc,sparse status=none
dd if="$work/swap.img" of="$work/disk.raw" bs=1M seek=161 conv=notrunc,sparse status=none

mkdir -p "$(dirname "$out")"
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$out"
echo "$out"
