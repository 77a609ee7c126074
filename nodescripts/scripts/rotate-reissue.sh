set -eu
umask 077
{{include "receive-secrets.sh" .Secrets}}
{{include "cluster-healthy.sh" .Health}}
{{include "pass-done.sh" .Pass}}
changed=
{{range .Files -}}
sudo cp "$staged/{{.Name}}" {{.Path}}.new
sudo cmp -s {{.Path}} {{.Path}}.new || changed=1
{{end -}}
if [ -z "$changed" ]; then
  sudo rm -f {{.Dir}}/*.new
  if pass_done; then echo "$(hostname): certificates already from the new CA"; exit 0; fi
  echo "$(hostname): certificates from the new CA, but the pass did not finish (etcd or its clients started before); restarting etcd and its clients"
else
{{range .Files -}}
sudo chown {{.Owner}} {{.Path}}.new && sudo chmod {{.Mode}} {{.Path}}.new && sudo mv {{.Path}}.new {{.Path}}
{{end -}}
echo "$(hostname): certificates from the new CA installed; restarting etcd"
fi
{{include "rotation-restart.sh" .Restart}}
mark_done
