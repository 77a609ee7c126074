set -eu
umask 022
{{include "cluster-healthy.sh" .Health}}
{{include "pass-done.sh" .Pass}}
if {{include "pem-in-file.sh" .Trusted}}; then
  if pass_done; then echo "$(hostname): already trusts the new CA"; exit 0; fi
  echo "$(hostname): trusts the new CA, but etcd started before; restarting etcd"
else
{ sudo cat {{.CA}}; cat <<'DEPLOYCTL_NEW_CA'
{{.NewCA}}
DEPLOYCTL_NEW_CA
} | sudo tee {{.CA}}.tmp >/dev/null
sudo chmod 0644 {{.CA}}.tmp && sudo mv {{.CA}}.tmp {{.CA}}
echo "$(hostname): trusts the old and the new CA; restarting etcd"
fi
{{include "rotation-restart.sh" .Restart}}
mark_done
