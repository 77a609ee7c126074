set -eu
umask 022
# fleetd, flanneld and locksmithd get the client URL of every etcd member
# that answers when they start, their own first (/opt/bin/etcd-live-endpoints, run
# before each start), so that they fail over while their own member
# restarts. A client whose running process lacks the members that answer
# now restarts: fleetd with fleet's engine lease held.
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
DEPLOYCTL_LIVE
)
put /opt/bin/etcd-live-endpoints 0755 "$live" || true
reload=
if put /etc/systemd/system/fleet.service.d/50-etcd-endpoints.conf 0644 '[Service]
ExecStartPre=/opt/bin/etcd-live-endpoints FLEET_ETCD_SERVERS /run/deployctl/fleet-etcd.env
EnvironmentFile=-/run/deployctl/fleet-etcd.env'; then reload=1; fi
if put /etc/systemd/system/flanneld.service.d/50-etcd-endpoints.conf 0644 '[Service]
ExecStartPre=/opt/bin/etcd-live-endpoints FLANNELD_ETCD_ENDPOINTS /run/deployctl/flanneld-etcd.env
EnvironmentFile=-/run/deployctl/flanneld-etcd.env'; then reload=1; fi
if put /etc/systemd/system/locksmithd.service.d/50-etcd-endpoints.conf 0644 '[Service]
ExecStartPre=/opt/bin/etcd-live-endpoints LOCKSMITHD_ENDPOINT /run/deployctl/locksmithd-etcd.env
EnvironmentFile=-/run/deployctl/locksmithd-etcd.env'; then reload=1; fi
if [ -n "$reload" ]; then sudo systemctl daemon-reload; fi
# lacks UNIT LINE: the unit runs a process whose environment lacks LINE.
lacks() {
  pid=$(systemctl show -p MainPID --value "$1")
  [ "${pid:-0}" -gt 0 ] && ! sudo cat "/proc/$pid/environ" | tr '\0' '\n' | grep -qxF -e "$2"
}
want=$(sudo /opt/bin/etcd-live-endpoints FLEET_ETCD_SERVERS)
if lacks fleet.service "$want"; then
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
if lacks flanneld.service "$(sudo /opt/bin/etcd-live-endpoints FLANNELD_ETCD_ENDPOINTS)"; then
  sudo systemctl try-restart flanneld.service
  echo "$(hostname): flanneld.service restarted onto the members that answer"
fi
if lacks locksmithd.service "$(sudo /opt/bin/etcd-live-endpoints LOCKSMITHD_ENDPOINT)"; then
  sudo systemctl try-restart locksmithd.service
  echo "$(hostname): locksmithd.service restarted onto the members that answer"
fi
echo "$(hostname): fleetd, flanneld and locksmithd start with the members that answer: $want"
