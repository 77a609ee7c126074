#!/bin/sh
# Writes FLEET_ETCD_SERVERS for the start of fleetd to the file named by $1,
# or prints it: the members listed in /etc/deployctl/etcd-members that answer healthy
# now, in its order, this node first, or this node alone when none does.
# The etcd client of fleet 1.0.0 sends the registration of its machine at
# start to one endpoint picked at random, and to no other: a member that
# is down when fleetd starts must not be listed.
set -u
live=
while IFS= read -r u; do
  if curl -fsS --max-time 1 "$u/health" 2>/dev/null | grep -q '"health":"true"'; then
    live="${live:+$live,}$u"
  fi
done < /etc/deployctl/etcd-members
line="FLEET_ETCD_SERVERS=${live:-http://127.0.0.1:2379}"
if [ $# -gt 0 ]; then
  mkdir -p "$(dirname "$1")" && printf '%s\n' "$line" > "$1.tmp" && mv "$1.tmp" "$1"
else
  printf '%s\n' "$line"
fi
