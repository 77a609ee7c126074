#!/usr/bin/env bash
# Installs what deployctl's tests and demo need on a Debian machine that has
# only Go, Docker and apt: Debian's nginx (the real binary the registrar
# drives), systemd-analyze (to verify generated units), iproute2, and curl
# (compat/etcd35 runs the nodes' curl calls against etcd 3.5), and Debian's Lua
# module for nginx (libnginx-mod-http-lua: the registrar's dynamic mode), and
# etcdctl (etcd-client: compat/etcd35 runs the nodes' auth setup with it), and
# iptables (the nodes' metadata block, tested in network namespaces), and
# shellcheck (nodescripts lints every script the nodes run). It also
# starts the Docker engine when it is installed but not running.
set -euo pipefail

missing=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(libnginx-mod-http-lua)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
# iptables: cloud-config's metadata block is run in network namespaces.
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
# shellcheck: nodescripts' tests lint the scripts infra runs on the nodes.
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
# debootstrap: the local cluster's node image (make e2e), built once.
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]} with apt-get"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "deps: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1
    fi
  fi
  # policy-rc.d keeps the package from starting a system nginx on port 80.
  if [ ! -e /usr/sbin/policy-rc.d ] && [ -z "$SUDO" ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  if command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "deps: starting dockerd"
    nohup dockerd >/tmp/deployctl-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  docker info >/dev/null 2>&1 || echo "deps: no Docker engine answers; Docker tests will be skipped" >&2
fi
exit 0
