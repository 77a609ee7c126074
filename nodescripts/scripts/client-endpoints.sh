set -eu
umask 022
# fleetd, flanneld and locksmithd get every etcd member's client URL, their
# own member's first, from one environment file each unit reads last. A
# client restarts when its running process lacks the list, so a run cut
# off after writing the files restarts it on the next.
want={{q .Env}}
if [ "$(sudo cat {{.EnvFile}} 2>/dev/null || true)" != "$want" ]; then
  sudo install -d -m 0755 {{.EnvDir}}
  printf '%s\n' "$want" | sudo tee {{.EnvFile}}.tmp >/dev/null
  sudo mv {{.EnvFile}}.tmp {{.EnvFile}}
  echo "$(hostname): {{.EnvFile}} lists every member"
fi
dropin={{q .DropIn}}
reload=
for d in {{range .Uses}}{{q .DropInDir}} {{end}}; do
  if [ "$(sudo cat "$d/{{.DropInName}}" 2>/dev/null || true)" != "$dropin" ]; then
    sudo install -d -m 0755 "$d"
    printf '%s\n' "$dropin" | sudo tee "$d/{{.DropInName}}.tmp" >/dev/null
    sudo mv "$d/{{.DropInName}}.tmp" "$d/{{.DropInName}}"
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
if ! uses {{q .Fleet.Unit}} {{q .Fleet.Line}}; then
  ok=
  for i in $(seq 1 60); do
    if {{.Restart.Curl}} {{.Restart.Endpoint}}/health 2>/dev/null | grep -q '"health":"true"'; then ok=1; break; fi
    sleep 2
  done
  [ -n "$ok" ] || { echo "$(hostname): etcd is not healthy, so fleet cannot restart with its lease held: journalctl -u etcd-member" >&2; exit 1; }
{{include "restart-fleet.sh" .Restart}}
fi
{{range .Others -}}
if ! uses {{q .Unit}} {{q .Line}}; then
  sudo systemctl try-restart {{q .Unit}}
  echo "$(hostname): {{.Unit}} restarted onto every member"
fi
{{end -}}
echo "$(hostname): fleet, flannel and locksmith use every etcd member: "{{q .List}}
