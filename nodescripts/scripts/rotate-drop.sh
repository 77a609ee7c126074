set -eu
umask 022
{{include "cluster-healthy.sh" .Health}}
{{include "pass-done.sh" .Pass}}
sudo tee {{.CA}}.new >/dev/null <<'DEPLOYCTL_NEW_CA'
{{.NewCA}}
DEPLOYCTL_NEW_CA
if sudo cmp -s {{.CA}} {{.CA}}.new; then
  sudo rm -f {{.CA}}.new
  if pass_done; then echo "$(hostname): trusts only the new CA already"; exit 0; fi
  echo "$(hostname): trusts only the new CA, but the pass did not finish; restarting etcd and its clients"
else
sudo chmod 0644 {{.CA}}.new && sudo mv {{.CA}}.new {{.CA}}
echo "$(hostname): trusts only the new CA; restarting etcd"
fi
{{include "rotation-restart.sh" .Restart}}
mark_done
