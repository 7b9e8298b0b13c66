#!/usr/bin/env bash
# Builds the VM nodes' operating system from nothing, cached outside the clone keyed by this
# script's content:
#   $NSDEBUG_CACHE/vm-<key>/{rootfs.img,vmlinuz,initrd.img}
# Debian 13 (trixie: kernel 6.12, systemd 257) by debootstrap, with systemd as PID 1, runc, the
# CNI plugins, iptables, sshd; no loop devices needed (mkfs.ext4 -d). Nothing node-specific is
# in it: each VM reads its identity, credentials and the cluster's binaries from a 9p share at
# boot (nsdebug-node.service runs the share's setup script; see vm.sh). Prints the directory on
# its last line.
set -euo pipefail
SUITE=trixie
MIRROR=${NSDEBUG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SIZE=8G # sparse: the file holds only what is written
# runc and containerd come from the share (build-containerd.sh; Debian 13 has runc 1.1, too old
# for user-namespaced pods); the rest is what kubelet, containerd and the tests
# use on a node (iptables for the kubelet's chains and CNI, procps for pgrep in tests).
PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,linux-image-amd64,initramfs-tools,lz4,libseccomp2,containernetworking-plugins,iptables,iproute2,procps,util-linux,mount,openssh-server,ca-certificates,conntrack,ethtool,socat
cache=${NSDEBUG_CACHE:-/var/cache/nsdebug}
key=$(sha256sum <"$0" | cut -c1-12)
out=$cache/vm-$SUITE-$key
if [ -s "$out/rootfs.img" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ]; then
  echo "$out"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "image.sh: must run as root (debootstrap)" >&2; exit 1; }
start=$(date +%s)
work=$(mktemp -d "$cache/.vm-build.XXXXXX")
root=$work/root
cleanup() {
  for m in proc sys dev/pts dev; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
echo "image.sh: debootstrap $SUITE (cold: a few minutes)…" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; echo "image.sh: debootstrap failed" >&2; exit 1; }

# Start nothing while packages are configured in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"

# initramfs: only the drivers a QEMU q35 guest boots from (virtio disk), lz4 for speed.
cat >"$root/etc/initramfs-tools/conf.d/nsdebug.conf" <<'CONF'
MODULES=list
COMPRESS=lz4
CONF
printf '%s\n' virtio_pci virtio_blk ext4 >"$root/etc/initramfs-tools/modules"
for m in proc sys dev dev/pts; do mkdir -p "$root/$m"; done
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
kver=$(ls "$root/lib/modules" | sort -V | tail -n1)
chroot "$root" update-initramfs -c -k "$kver" >"$work/initramfs.log" 2>&1 ||
  { tail -n 30 "$work/initramfs.log" >&2; echo "image.sh: update-initramfs failed" >&2; exit 1; }

# Node identity comes from the share at boot: no baked host keys, machine-id, hostname.
rm -f "$root"/etc/ssh/ssh_host_* "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
: >"$root/etc/machine-id" # systemd writes a new one at first boot
echo nsdebug-vm >"$root/etc/hostname"
echo "/dev/vda / ext4 rw,noatime 0 1" >"$root/etc/fstab"
# No DNS and no other network: the kubelet only needs a resolv.conf to hand to pods.
echo "nameserver 127.0.0.1" >"$root/etc/resolv.conf"
# The share (9p) and what runs from it; everything node-specific is in the setup script there.
mkdir -p "$root/mnt/nsdebug"
cat >"$root/etc/systemd/system/nsdebug-node.service" <<'UNIT'
[Unit]
Description=nsdebug e2e node setup (from the host's 9p share)
After=systemd-modules-load.service local-fs.target
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
# udev may still be binding the 9p transport to its device ("no channels available"): retry
# ($$ is systemd's escape for the shell's $).
ExecStart=/bin/sh -c 'i=0; until mountpoint -q /mnt/nsdebug || mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro nsdebug /mnt/nsdebug 2>/dev/null; do i=$$((i + 1)); [ $$i -lt 600 ] || exit 1; modprobe -q 9pnet_virtio; sleep 0.1; done; exec /bin/sh /mnt/nsdebug/setup.sh'
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable nsdebug-node.service >/dev/null 2>&1
# Nothing else competes for the emulated CPUs.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-timesyncd.service; do
  chroot "$root" systemctl disable "$u" >/dev/null 2>&1 || true
  chroot "$root" systemctl mask "$u" >/dev/null 2>&1 || true
done
chroot "$root" systemctl set-default multi-user.target >/dev/null 2>&1
# sshd: keys only (the setup script installs the cluster's key and this VM's host keys).
cat >"$root/etc/ssh/sshd_config.d/nsdebug.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CONF
rm -f "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get clean

for m in dev/pts dev sys proc; do umount "$root/$m"; done
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
truncate -s "$SIZE" "$work/rootfs.img"
mkfs.ext4 -q -F -L nsdebug-root -d "$root" "$work/rootfs.img"
rm -rf "$root"
mkdir -p "$out"
mv "$work/vmlinuz" "$work/initrd.img" "$out/"
mv "$work/rootfs.img" "$out/rootfs.img"
# Older builds are dead weight (a VM still running on one keeps its open file).
find "$cache" -mindepth 1 -maxdepth 1 -type d -name "vm-$SUITE-*" ! -name "vm-$SUITE-$key" -exec rm -rf {} +
echo "image.sh: built $out in $(( $(date +%s) - start ))s (kernel $kver)" >&2
echo "$out"
