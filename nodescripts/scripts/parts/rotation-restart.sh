{{/* The engine lease of fleet is held in the name of deployctl from before
etcd restarts until fleet lists this machine again: fleetd here, cut off
from its etcd or trusting only the CA of before, cannot renew the
registration of its machine, and once that lapsed after its TTL an engine
unscheduled every unit here: CI saw it twice, the LB gone for a minute.
With the lease held no engine runs, so nothing moves. */ -}}
holder="{\"MachineID\":\"deployctl-ca-rotation-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
{{.Curl}} -o /dev/null -X PUT "{{.Keys}}/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=180
sudo systemctl restart etcd-member.service
ok=
for i in $(seq 1 90); do
  if {{.Curl}} {{.Endpoint}}/health 2>/dev/null | grep -q '"health":"true"'; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || { echo "etcd on $(hostname) is not healthy 90 s after its restart: journalctl -u etcd-member" >&2; exit 1; }
echo "$(hostname): etcd healthy after $i s"
{{if .RestartFleet -}}
{{include "restart-fleet.sh" .}}
{{- else -}}
{{include "fleet-lists-machine.sh" .}}
{{- end}}
sudo systemctl try-restart {{join .Clients " "}}
