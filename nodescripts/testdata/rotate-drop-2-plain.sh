set -eu
umask 022
members=$(sudo curl -fsS --max-time 5 http://127.0.0.1:2379/v2/members) || { echo "$(hostname): the local etcd does not list its members; not starting this pass" >&2; exit 1; }
urls=$(echo "$members" | grep -o '"clientURLs":\[[^]]*\]' | grep -o 'https\?://[^"]*' || true)
[ -n "$urls" ] || { echo "$(hostname): no member lists a client URL; not starting this pass" >&2; exit 1; }
for u in $urls; do
  sudo curl -fsS --max-time 5 "$u/health" 2>/dev/null | grep -q '"health":"true"' || { echo "$(hostname): member $u is not healthy; not starting this pass (etcdctl endpoint health --cluster)" >&2; exit 1; }
done
pass_done() {
  [ "$(sudo cat /var/lib/deployctl/rotation/drop 2>/dev/null)" = "92057f8776104bec2538ecd860b797ce" ] && return 0
  if [ "$(sudo stat -c %Y /etc/ssl/etcd/ca.pem)" -ge "$(t=$(systemctl show -p ActiveEnterTimestamp --value etcd-member.service); if [ -n "$t" ]; then date -d "$t" +%s 2>/dev/null || echo 0; else echo 0; fi)" ]; then return 1; fi
  etcd_t=$(systemctl show -p ActiveEnterTimestampMonotonic --value etcd-member.service)
  for u in flanneld.service locksmithd.service; do
    systemctl is-active -q "$u" || continue
    [ "$(systemctl show -p ActiveEnterTimestampMonotonic --value "$u")" -gt "${etcd_t:-0}" ] || return 1
  done
  mark_done
}
mark_done() { sudo install -d -m 0755 /var/lib/deployctl/rotation && echo "92057f8776104bec2538ecd860b797ce" | sudo tee /var/lib/deployctl/rotation/drop >/dev/null; }
sudo tee /etc/ssl/etcd/ca.pem.new >/dev/null <<'DEPLOYCTL_NEW_CA'
-----BEGIN CERTIFICATE-----
b3RoZXI=
-----END CERTIFICATE-----
DEPLOYCTL_NEW_CA
if sudo cmp -s /etc/ssl/etcd/ca.pem /etc/ssl/etcd/ca.pem.new; then
  sudo rm -f /etc/ssl/etcd/ca.pem.new
  if pass_done; then echo "$(hostname): trusts only the new CA already"; exit 0; fi
  echo "$(hostname): trusts only the new CA, but the pass did not finish; restarting etcd and its clients"
else
sudo chmod 0644 /etc/ssl/etcd/ca.pem.new && sudo mv /etc/ssl/etcd/ca.pem.new /etc/ssl/etcd/ca.pem
echo "$(hostname): trusts only the new CA; restarting etcd"
fi
holder="{\"MachineID\":\"deployctl-ca-rotation-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
sudo curl -fsS --max-time 5 -o /dev/null -X PUT "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=180
sudo systemctl restart etcd-member.service
ok=
for i in $(seq 1 90); do
  if sudo curl -fsS --max-time 5 http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"'; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || { echo "etcd on $(hostname) is not healthy 90 s after its restart: journalctl -u etcd-member" >&2; exit 1; }
echo "$(hostname): etcd healthy after $i s"
ok=
for i in $(seq 1 120); do
  if sudo /opt/bin/fleetctl list-machines --full --no-legend 2>/dev/null | grep -q "^$(cat /etc/machine-id)"; then ok=1; break; fi
  # renewed every 10 s (30 s to live), only while it is still this run's
  if [ $((i % 20)) -eq 0 ]; then
    sudo curl -fsS --max-time 5 -o /dev/null -X PUT -G "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" --data-urlencode "value=$holder" -d ttl=30 || true
  fi
  sleep 0.5
done
sudo curl -fsS --max-time 5 -o /dev/null -X DELETE -G "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
[ -n "$ok" ] || { echo "fleet on $(hostname) did not list this machine within 60 s of the restart of etcd: journalctl -u fleet" >&2; exit 1; }
sudo systemctl try-restart flanneld.service locksmithd.service
mark_done
