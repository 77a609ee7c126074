#!/bin/sh
# Usage: etcd-live-endpoints VAR [FILE]. Writes VAR=URLS to FILE, or prints
# it: the members listed in /etc/deployctl/etcd-members that answer healthy now, in
# its order, this node first, or this node alone when none does. The etcd
# v2 clients of fleet and flannel send a create, such as the registration
# of a machine at start, to one endpoint picked at random and to no other:
# a member that is down when they start must not be listed.
set -u
live=
while IFS= read -r u; do
  if curl -fsS --max-time 1 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem "$u/health" 2>/dev/null | grep -q '"health":"true"'; then
    live="${live:+$live,}$u"
  fi
done < /etc/deployctl/etcd-members
line="$1=${live:-https://127.0.0.1:2379}"
if [ $# -gt 1 ]; then
  mkdir -p "$(dirname "$2")" && printf '%s\n' "$line" > "$2.tmp" && mv "$2.tmp" "$2"
else
  printf '%s\n' "$line"
fi
