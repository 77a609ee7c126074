if systemctl is-active -q fleet.service; then
  holder="{\"MachineID\":\"deployctl-ca-rotation-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"
  {{.Curl}} -o /dev/null -X PUT "{{.Keys}}/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
  sleep 1
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  {{.Curl}} -o /dev/null -X DELETE "{{.Keys}}/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
  ok=
  for i in $(seq 1 120); do
    if sudo /opt/bin/fleetctl list-machines --full --no-legend 2>/dev/null | grep -q "^$(cat /etc/machine-id)"; then ok=1; break; fi
    # The lease lives 30 s and the wait up to 60: renewed every 10 s, only
    # while it is still this run's.
    if [ $((i % 20)) -eq 0 ]; then
      {{.Curl}} -o /dev/null -X PUT -G "{{.Keys}}/lease/engine-leader" --data-urlencode "prevValue=$holder" --data-urlencode "value=$holder" -d ttl=30 || true
    fi
    sleep 0.5
  done
  {{.Curl}} -o /dev/null -X DELETE -G "{{.Keys}}/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
  [ -n "$ok" ] || { echo "fleet on $(hostname) did not list this machine 60 s after its restart: journalctl -u fleet" >&2; exit 1; }
  echo "$(hostname): fleet restarted, its machine and units kept"
fi
