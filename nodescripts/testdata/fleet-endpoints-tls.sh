set -eu
umask 022
# fleetd gets the client URL of every etcd member that answers when it
# starts, its own first (/opt/bin/fleet-etcd-endpoints, run before each start), so that
# it fails over while its own member restarts. It restarts now when the
# process running lacks the members that answer now.
put() {
  if [ "$(sudo cat "$1" 2>/dev/null || true)" = "$3" ]; then return 1; fi
  sudo install -d -m 0755 "$(dirname "$1")"
  printf '%s\n' "$3" | sudo tee "$1.tmp" >/dev/null
  sudo chmod "$2" "$1.tmp"
  sudo mv "$1.tmp" "$1"
}
put /etc/deployctl/etcd-members 0644 'https://127.0.0.1:2379
https://10.0.0.2:2379
https://10.0.0.3:2379' || true
live=$(cat <<'DEPLOYCTL_LIVE'
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
  if curl -fsS --max-time 1 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem "$u/health" 2>/dev/null | grep -q '"health":"true"'; then
    live="${live:+$live,}$u"
  fi
done < /etc/deployctl/etcd-members
line="FLEET_ETCD_SERVERS=${live:-https://127.0.0.1:2379}"
if [ $# -gt 0 ]; then
  mkdir -p "$(dirname "$1")" && printf '%s\n' "$line" > "$1.tmp" && mv "$1.tmp" "$1"
else
  printf '%s\n' "$line"
fi
DEPLOYCTL_LIVE
)
put /opt/bin/fleet-etcd-endpoints 0755 "$live" || true
if put /etc/systemd/system/fleet.service.d/50-etcd-endpoints.conf 0644 '[Service]
ExecStartPre=/opt/bin/fleet-etcd-endpoints /run/deployctl/fleet-etcd.env
EnvironmentFile=-/run/deployctl/fleet-etcd.env'; then sudo systemctl daemon-reload; fi
want=$(sudo /opt/bin/fleet-etcd-endpoints)
pid=$(systemctl show -p MainPID --value fleet.service)
if [ "${pid:-0}" -gt 0 ] && ! sudo cat "/proc/$pid/environ" | tr '\0' '\n' | grep -qxF -e "$want"; then
  holder="{\"MachineID\":\"deployctl-fleet-endpoints-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
  sudo curl -fsS --max-time 5 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem -o /dev/null -X PUT "https://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
if systemctl is-active -q fleet.service; then
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  sudo curl -fsS --max-time 5 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem -o /dev/null -X DELETE "https://127.0.0.1:2379/v2/keys/_coreos.com/fleet/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
  ok=
for i in $(seq 1 120); do
  if sudo /opt/bin/fleetctl list-machines --full --no-legend 2>/dev/null | grep -q "^$(cat /etc/machine-id)"; then ok=1; break; fi
  # renewed every 10 s (30 s to live), only while it is still this run's
  if [ $((i % 20)) -eq 0 ]; then
    sudo curl -fsS --max-time 5 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem -o /dev/null -X PUT -G "https://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" --data-urlencode "value=$holder" -d ttl=30 || true
  fi
  sleep 0.5
done
sudo curl -fsS --max-time 5 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem -o /dev/null -X DELETE -G "https://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
[ -n "$ok" ] || { echo "fleet on $(hostname) did not list this machine within 60 s of the restart of etcd: journalctl -u fleet" >&2; exit 1; }
  echo "$(hostname): fleet restarted, its machine and units kept"
else
  sudo curl -fsS --max-time 5 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem -o /dev/null -X DELETE -G "https://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
fi
fi
echo "$(hostname): fleetd starts with the members that answer: $want"
