sudo systemctl restart etcd-member.service
ok=
for i in $(seq 1 90); do
  if {{.Curl}} {{.Endpoint}}/health 2>/dev/null | grep -q '"health":"true"'; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || { echo "etcd on $(hostname) is not healthy 90 s after its restart: journalctl -u etcd-member" >&2; exit 1; }
echo "$(hostname): etcd healthy after $i s"
{{if .RestartFleet -}}
{{/* fleetd first: from the restart of etcd until its own, fleetd, which
trusts only the old CA, cannot renew the registration of its machine, and
once that lapses, after its TTL, fleet unschedules every unit here. CI saw
it once: 45 s from the restart of etcd, through those of flannel and
locksmith, to that of fleetd. */ -}}
{{include "restart-fleet.sh" .}}
{{end -}}
sudo systemctl try-restart {{join .Clients " "}}
