if systemctl is-active -q fleet.service; then
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  {{.Curl}} -o /dev/null -X DELETE "{{.Keys}}/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
  {{include "fleet-lists-machine.sh" .}}
  echo "$(hostname): fleet restarted, its machine and units kept"
else
  {{.Curl}} -o /dev/null -X DELETE -G "{{.Keys}}/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
fi
