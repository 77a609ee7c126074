#!/usr/bin/env bash
# node-rootfs.sh OUT.tar: the local cluster's node base, a Debian bookworm
# root filesystem that boots systemd as PID 1 in a container and has what a
# Flatcar node has that the user data relies on: systemd, Docker (Debian's
# docker.io: Flatcar runs Docker too), sshd, sudo, curl, iptables, iproute2,
# etcdctl, busybox-static (the node's metadata service stand-in). debootstrap
# fetches from the Debian mirror apt uses here; nothing else is downloaded.
# deployctl cluster local runs it (embedded) and caches OUT.tar by its hash.
set -euo pipefail
out=${1:?usage: node-rootfs.sh OUT.tar}
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || {
  echo "node-rootfs: installing debootstrap with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
mirror=${DEPLOYCTL_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/deployctl-node-rootfs.XXXXXX)
# debootstrap mounts /proc and /sys inside; unmount before removing.
cleanup() {
  grep -o "$root/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$root" "$root.log"
}
trap cleanup EXIT
pkgs=systemd,systemd-sysv,dbus,docker.io,openssh-server,sudo,curl,ca-certificates,iptables,iproute2,etcd-client,busybox-static,kmod,nginx-light,libnginx-mod-http-lua,procps,less
echo "node-rootfs: debootstrap bookworm from $mirror (a few minutes, once)" >&2
debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; exit 1; }
# Flatcar's users: core (sudo without a password, in the docker and
# systemd-journal groups: fleetctl journal and deployctl units logs read the
# system journal as core, as on CoreOS) and etcd (etcd-member runs etcd as it).
chroot "$root" useradd -m -s /bin/bash -G sudo,docker,systemd-journal core
chroot "$root" useradd -r -s /usr/sbin/nologin -d /var/lib/etcd etcd
echo 'core ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/core"; chmod 0440 "$root/etc/sudoers.d/core"
# Each node gets its own machine ID at first boot (fleet names machines by it).
: > "$root/etc/machine-id"; rm -f "$root/var/lib/dbus/machine-id"
# Host keys come from the user data (pinned by deployctl), never from the image.
rm -f "$root"/etc/ssh/ssh_host_*
# A container has no consoles and no kernel modules to load.
# nginx is there for the load balancer's image (OpenResty's stand-in), never run on the node.
for u in nginx.service getty@tty1.service console-getty.service systemd-udevd.service systemd-modules-load.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" --numeric-owner -cf "$out.tmp" . && mv "$out.tmp" "$out"
echo "node-rootfs: $(du -h "$out" | cut -f1) in $out" >&2
