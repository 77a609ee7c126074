set -eu
umask 022
# fleetd, flanneld and locksmithd get the client URL of every etcd member
# that answers when they start, their own first ({{.LiveScript}}, run
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
put {{.MembersFile}} 0644 {{q .Members}} || true
live=$(cat <<'DEPLOYCTL_LIVE'
{{.Live}}
DEPLOYCTL_LIVE
)
put {{.LiveScript}} 0755 "$live" || true
reload=
{{range .Clients -}}
if put {{.DropIn}} 0644 {{q .DropInText}}; then reload=1; fi
{{end -}}
if [ -n "$reload" ]; then sudo systemctl daemon-reload; fi
# lacks UNIT LINE: the unit runs a process whose environment lacks LINE.
lacks() {
  pid=$(systemctl show -p MainPID --value "$1")
  [ "${pid:-0}" -gt 0 ] && ! sudo cat "/proc/$pid/environ" | tr '\0' '\n' | grep -qxF -e "$2"
}
want=$(sudo {{.LiveScript}} {{.Fleet.Var}})
if lacks {{.Fleet.Unit}} "$want"; then
  holder="{\"MachineID\":\"deployctl-fleet-endpoints-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
  {{.Restart.Curl}} -o /dev/null -X PUT "{{.Restart.Keys}}/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
{{include "restart-fleet.sh" .Restart}}
fi
{{range .Others -}}
if lacks {{.Unit}} "$(sudo {{$.LiveScript}} {{.Var}})"; then
  sudo systemctl try-restart {{.Unit}}
  echo "$(hostname): {{.Unit}} restarted onto the members that answer"
fi
{{end -}}
echo "$(hostname): fleetd, flanneld and locksmithd start with the members that answer: $want"
