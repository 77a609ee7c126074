#!/bin/bash
# Stand-in for flannel's mk-docker-opts.sh as flannel-docker-opts.service
# runs it (-d FILE -i): Docker's options from flannel's subnet lease.
set -euo pipefail
dest=/run/docker_opts.env subnet_env=/run/flannel/subnet.env individual=0
while getopts "d:f:ik" o; do
  case $o in d) dest=$OPTARG ;; f) subnet_env=$OPTARG ;; i) individual=1 ;; k) ;; *) exit 2 ;; esac
done
for i in $(seq 1 300); do [ -f "$subnet_env" ] && break; sleep 0.2; done
# shellcheck disable=SC1090
. "$subnet_env"
ipmasq=true
[ "${FLANNEL_IPMASQ:-false}" = true ] && ipmasq=false
{
  echo "DOCKER_OPT_BIP=\"--bip=${FLANNEL_SUBNET}\""
  echo "DOCKER_OPT_IPMASQ=\"--ip-masq=${ipmasq}\""
  echo "DOCKER_OPT_MTU=\"--mtu=${FLANNEL_MTU}\""
  [ "$individual" = 1 ] || echo "DOCKER_OPTS=\" --bip=${FLANNEL_SUBNET} --ip-masq=${ipmasq} --mtu=${FLANNEL_MTU}\""
} > "$dest.tmp"
mv "$dest.tmp" "$dest"
