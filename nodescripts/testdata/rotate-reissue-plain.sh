set -eu
umask 077
staged=$(sudo mktemp -d /run/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$staged"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^#deployctl-secret [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$staged"
for f in flannel-key.pem flannel.pem fleet-key.pem fleet.pem locksmith-key.pem locksmith.pem registrar-key.pem registrar.pem server-key.pem server.pem; do
  sudo test -s "$staged/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
members=$(sudo curl -fsS --max-time 5 http://127.0.0.1:2379/v2/members) || { echo "$(hostname): the local etcd does not list its members; not starting this pass" >&2; exit 1; }
urls=$(echo "$members" | grep -o '"clientURLs":\[[^]]*\]' | grep -o 'https\?://[^"]*' || true)
[ -n "$urls" ] || { echo "$(hostname): no member lists a client URL; not starting this pass" >&2; exit 1; }
for u in $urls; do
  sudo curl -fsS --max-time 5 "$u/health" 2>/dev/null | grep -q '"health":"true"' || { echo "$(hostname): member $u is not healthy; not starting this pass (etcdctl endpoint health --cluster)" >&2; exit 1; }
done
pass_done() {
  [ "$(sudo cat /var/lib/deployctl/rotation/reissue 2>/dev/null)" = "4b0f0be0793069e19ced3aed55320a65" ] && return 0
  if [ "$(sudo stat -c %Y /etc/ssl/etcd/server.pem)" -ge "$(t=$(systemctl show -p ActiveEnterTimestamp --value etcd-member.service); if [ -n "$t" ]; then date -d "$t" +%s 2>/dev/null || echo 0; else echo 0; fi)" ]; then return 1; fi
  etcd_t=$(systemctl show -p ActiveEnterTimestampMonotonic --value etcd-member.service)
  for u in flanneld.service locksmithd.service fleet.service; do
    systemctl is-active -q "$u" || continue
    [ "$(systemctl show -p ActiveEnterTimestampMonotonic --value "$u")" -gt "${etcd_t:-0}" ] || return 1
  done
  mark_done
}
mark_done() { sudo install -d -m 0755 /var/lib/deployctl/rotation && echo "4b0f0be0793069e19ced3aed55320a65" | sudo tee /var/lib/deployctl/rotation/reissue >/dev/null; }
changed=
sudo cp "$staged/flannel-key.pem" /etc/ssl/etcd/flannel-key.pem.new
sudo cmp -s /etc/ssl/etcd/flannel-key.pem /etc/ssl/etcd/flannel-key.pem.new || changed=1
sudo cp "$staged/flannel.pem" /etc/ssl/etcd/flannel.pem.new
sudo cmp -s /etc/ssl/etcd/flannel.pem /etc/ssl/etcd/flannel.pem.new || changed=1
sudo cp "$staged/fleet-key.pem" /etc/ssl/etcd/fleet-key.pem.new
sudo cmp -s /etc/ssl/etcd/fleet-key.pem /etc/ssl/etcd/fleet-key.pem.new || changed=1
sudo cp "$staged/fleet.pem" /etc/ssl/etcd/fleet.pem.new
sudo cmp -s /etc/ssl/etcd/fleet.pem /etc/ssl/etcd/fleet.pem.new || changed=1
sudo cp "$staged/locksmith-key.pem" /etc/ssl/etcd/locksmith-key.pem.new
sudo cmp -s /etc/ssl/etcd/locksmith-key.pem /etc/ssl/etcd/locksmith-key.pem.new || changed=1
sudo cp "$staged/locksmith.pem" /etc/ssl/etcd/locksmith.pem.new
sudo cmp -s /etc/ssl/etcd/locksmith.pem /etc/ssl/etcd/locksmith.pem.new || changed=1
sudo cp "$staged/registrar-key.pem" /etc/ssl/etcd/registrar-key.pem.new
sudo cmp -s /etc/ssl/etcd/registrar-key.pem /etc/ssl/etcd/registrar-key.pem.new || changed=1
sudo cp "$staged/registrar.pem" /etc/ssl/etcd/registrar.pem.new
sudo cmp -s /etc/ssl/etcd/registrar.pem /etc/ssl/etcd/registrar.pem.new || changed=1
sudo cp "$staged/server-key.pem" /etc/ssl/etcd/server-key.pem.new
sudo cmp -s /etc/ssl/etcd/server-key.pem /etc/ssl/etcd/server-key.pem.new || changed=1
sudo cp "$staged/server.pem" /etc/ssl/etcd/server.pem.new
sudo cmp -s /etc/ssl/etcd/server.pem /etc/ssl/etcd/server.pem.new || changed=1
if [ -z "$changed" ]; then
  sudo rm -f /etc/ssl/etcd/*.new
  if pass_done; then echo "$(hostname): certificates already from the new CA"; exit 0; fi
  echo "$(hostname): certificates from the new CA, but the pass did not finish (etcd or its clients started before); restarting etcd and its clients"
else
sudo chown root:root /etc/ssl/etcd/flannel-key.pem.new && sudo chmod 0600 /etc/ssl/etcd/flannel-key.pem.new && sudo mv /etc/ssl/etcd/flannel-key.pem.new /etc/ssl/etcd/flannel-key.pem
sudo chown root:root /etc/ssl/etcd/flannel.pem.new && sudo chmod 0644 /etc/ssl/etcd/flannel.pem.new && sudo mv /etc/ssl/etcd/flannel.pem.new /etc/ssl/etcd/flannel.pem
sudo chown root:root /etc/ssl/etcd/fleet-key.pem.new && sudo chmod 0600 /etc/ssl/etcd/fleet-key.pem.new && sudo mv /etc/ssl/etcd/fleet-key.pem.new /etc/ssl/etcd/fleet-key.pem
sudo chown root:root /etc/ssl/etcd/fleet.pem.new && sudo chmod 0644 /etc/ssl/etcd/fleet.pem.new && sudo mv /etc/ssl/etcd/fleet.pem.new /etc/ssl/etcd/fleet.pem
sudo chown root:root /etc/ssl/etcd/locksmith-key.pem.new && sudo chmod 0600 /etc/ssl/etcd/locksmith-key.pem.new && sudo mv /etc/ssl/etcd/locksmith-key.pem.new /etc/ssl/etcd/locksmith-key.pem
sudo chown root:root /etc/ssl/etcd/locksmith.pem.new && sudo chmod 0644 /etc/ssl/etcd/locksmith.pem.new && sudo mv /etc/ssl/etcd/locksmith.pem.new /etc/ssl/etcd/locksmith.pem
sudo chown root:root /etc/ssl/etcd/registrar-key.pem.new && sudo chmod 0600 /etc/ssl/etcd/registrar-key.pem.new && sudo mv /etc/ssl/etcd/registrar-key.pem.new /etc/ssl/etcd/registrar-key.pem
sudo chown root:root /etc/ssl/etcd/registrar.pem.new && sudo chmod 0644 /etc/ssl/etcd/registrar.pem.new && sudo mv /etc/ssl/etcd/registrar.pem.new /etc/ssl/etcd/registrar.pem
sudo chown etcd:etcd /etc/ssl/etcd/server-key.pem.new && sudo chmod 0600 /etc/ssl/etcd/server-key.pem.new && sudo mv /etc/ssl/etcd/server-key.pem.new /etc/ssl/etcd/server-key.pem
sudo chown root:root /etc/ssl/etcd/server.pem.new && sudo chmod 0644 /etc/ssl/etcd/server.pem.new && sudo mv /etc/ssl/etcd/server.pem.new /etc/ssl/etcd/server.pem
echo "$(hostname): certificates from the new CA installed; restarting etcd"
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
if systemctl is-active -q fleet.service; then
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  sudo curl -fsS --max-time 5 -o /dev/null -X DELETE "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
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
  echo "$(hostname): fleet restarted, its machine and units kept"
else
  sudo curl -fsS --max-time 5 -o /dev/null -X DELETE -G "http://127.0.0.1:2379/v2/keys/_coreos.com/fleet/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
fi
sudo systemctl try-restart flanneld.service locksmithd.service
mark_done
