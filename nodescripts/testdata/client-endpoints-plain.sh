set -eu
umask 022
# fleetd, flanneld and locksmithd get every etcd member's client URL, their
# own member's first, from one environment file each unit reads last. A
# client restarts when its running process lacks the list, so a run cut
# off after writing the files restarts it on the next.
want='FLEET_ETCD_SERVERS=http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379
FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379
LOCKSMITHD_ENDPOINT=http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379'
if [ "$(sudo cat /etc/deployctl/etcd-endpoints.env 2>/dev/null || true)" != "$want" ]; then
  sudo install -d -m 0755 /etc/deployctl
  printf '%s\n' "$want" | sudo tee /etc/deployctl/etcd-endpoints.env.tmp >/dev/null
  sudo mv /etc/deployctl/etcd-endpoints.env.tmp /etc/deployctl/etcd-endpoints.env
  echo "$(hostname): /etc/deployctl/etcd-endpoints.env lists every member"
fi
dropin='[Service]
EnvironmentFile=/etc/deployctl/etcd-endpoints.env'
reload=
for d in '/etc/systemd/system/fleet.service.d' '/etc/systemd/system/flanneld.service.d' '/etc/systemd/system/locksmithd.service.d' ; do
  if [ "$(sudo cat "$d/50-etcd-endpoints.conf" 2>/dev/null || true)" != "$dropin" ]; then
    sudo install -d -m 0755 "$d"
    printf '%s\n' "$dropin" | sudo tee "$d/50-etcd-endpoints.conf.tmp" >/dev/null
    sudo mv "$d/50-etcd-endpoints.conf.tmp" "$d/50-etcd-endpoints.conf"
    reload=1
  fi
done
if [ -n "$reload" ]; then sudo systemctl daemon-reload; fi
# uses UNIT LINE: the unit runs no process, or its process has LINE in its
# environment (it starts with the list either way).
uses() {
  pid=$(systemctl show -p MainPID --value "$1")
  [ "${pid:-0}" -gt 0 ] || return 0
  sudo cat "/proc/$pid/environ" 2>/dev/null | tr '\0' '\n' | grep -qxF -e "$2"
}
if ! uses 'fleet.service' 'FLEET_ETCD_SERVERS=http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379'; then
  ok=
  for i in $(seq 1 60); do
    if sudo curl -fsS --max-time 5 http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"'; then ok=1; break; fi
    sleep 2
  done
  [ -n "$ok" ] || { echo "$(hostname): etcd is not healthy, so fleet cannot restart with its lease held: journalctl -u etcd-member" >&2; exit 1; }
if systemctl is-active -q fleet.service; then
  holder="{\"MachineID\":\"deployctl-ca-rotation-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
  sudo curl -fsS --max-time 5 -o /dev/null -X PUT "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
  sleep 1
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  sudo curl -fsS --max-time 5 -o /dev/null -X DELETE "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
  ok=
  for i in $(seq 1 120); do
    if sudo /opt/bin/fleetctl list-machines --full --no-legend 2>/dev/null | grep -q "^$(cat /etc/machine-id)"; then ok=1; break; fi
    # The lease lives 30 s and the wait up to 60: renewed every 10 s, only
    # while it is still this run's.
    if [ $((i % 20)) -eq 0 ]; then
      sudo curl -fsS --max-time 5 -o /dev/null -X PUT -G "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" --data-urlencode "value=$holder" -d ttl=30 || true
    fi
    sleep 0.5
  done
  sudo curl -fsS --max-time 5 -o /dev/null -X DELETE -G "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
  [ -n "$ok" ] || { echo "fleet on $(hostname) did not list this machine 60 s after its restart: journalctl -u fleet" >&2; exit 1; }
  echo "$(hostname): fleet restarted, its machine and units kept"
fi
fi
if ! uses 'flanneld.service' 'FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379'; then
  sudo systemctl try-restart 'flanneld.service'
  echo "$(hostname): flanneld.service restarted onto every member"
fi
if ! uses 'locksmithd.service' 'LOCKSMITHD_ENDPOINT=http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379'; then
  sudo systemctl try-restart 'locksmithd.service'
  echo "$(hostname): locksmithd.service restarted onto every member"
fi
echo "$(hostname): fleet, flannel and locksmith use every etcd member: "'http://127.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379'
