set -eu
umask 022
# fleetd gets the client URL of every etcd member that answers when it
# starts, its own first ({{.LiveScript}}, run before each start), so that
# it fails over while its own member restarts. It restarts now when the
# process running lacks the members that answer now.
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
if put {{.DropIn}} 0644 {{q .DropInText}}; then sudo systemctl daemon-reload; fi
want=$(sudo {{.LiveScript}})
pid=$(systemctl show -p MainPID --value fleet.service)
if [ "${pid:-0}" -gt 0 ] && ! sudo cat "/proc/$pid/environ" | tr '\0' '\n' | grep -qxF -e "$want"; then
  holder="{\"MachineID\":\"deployctl-fleet-endpoints-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
  {{.Restart.Curl}} -o /dev/null -X PUT "{{.Restart.Keys}}/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
{{include "restart-fleet.sh" .Restart}}
fi
echo "$(hostname): fleetd starts with the members that answer: $want"
