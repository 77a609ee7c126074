set -eu
umask 077
DEPLOYCTL_ROOT=$(sudo mktemp -d /run/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$DEPLOYCTL_ROOT"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^#deployctl-secret [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$DEPLOYCTL_ROOT"
for f in root.pem root-key.pem; do
  sudo test -s "$DEPLOYCTL_ROOT/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/ssl/etcd/ca.pem ETCDCTL_CERT=$DEPLOYCTL_ROOT/root.pem ETCDCTL_KEY=$DEPLOYCTL_ROOT/root-key.pem
e() { sudo -E /usr/bin/etcdctl "$@"; }
for i in $(seq 1 60); do e endpoint health >/dev/null 2>&1 && break; sleep 2; done
e user get root >/dev/null 2>&1 || e user add root --no-password
e user grant-role root root
e role get registrar >/dev/null 2>&1 || e role add registrar
e role grant-permission registrar --prefix=true readwrite /services/
e user get registrar >/dev/null 2>&1 || e user add registrar --no-password
e user grant-role registrar registrar
e auth status 2>/dev/null | grep -q 'Authentication Status: true' || e auth enable
v2() { sudo curl -fsS --cacert /etc/ssl/etcd/ca.pem --cert $DEPLOYCTL_ROOT/root.pem --key $DEPLOYCTL_ROOT/root-key.pem -o /dev/null -X PUT -H 'Content-Type: application/json' https://127.0.0.1:2379/v2/auth/"$1" -d "$2"; }
v2get() { sudo curl -fsS --cacert /etc/ssl/etcd/ca.pem --cert $DEPLOYCTL_ROOT/root.pem --key $DEPLOYCTL_ROOT/root-key.pem https://127.0.0.1:2379/v2/auth/"$1" 2>/dev/null; }
pw() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
v2get roles/fleet >/dev/null || v2 roles/fleet '{"role":"fleet","permissions":{"kv":{"read":["/_coreos.com/fleet/*"],"write":["/_coreos.com/fleet/*"]}}}'
v2get roles/fleet | grep -qF '"/_coreos.com/fleet/*"' || v2 roles/fleet '{"role":"fleet","grant":{"kv":{"read":["/_coreos.com/fleet/*"],"write":["/_coreos.com/fleet/*"]}}}'
if v2get roles/fleet | grep -qF '"/_coreos.com/fleet*"'; then v2 roles/fleet '{"role":"fleet","revoke":{"kv":{"read":["/_coreos.com/fleet*"],"write":["/_coreos.com/fleet*"]}}}'; fi
v2get roles/flannel >/dev/null || v2 roles/flannel '{"role":"flannel","permissions":{"kv":{"read":["/coreos.com/network/*"],"write":["/coreos.com/network/*"]}}}'
v2get roles/flannel | grep -qF '"/coreos.com/network/*"' || v2 roles/flannel '{"role":"flannel","grant":{"kv":{"read":["/coreos.com/network/*"],"write":["/coreos.com/network/*"]}}}'
if v2get roles/flannel | grep -qF '"/coreos.com/network*"'; then v2 roles/flannel '{"role":"flannel","revoke":{"kv":{"read":["/coreos.com/network*"],"write":["/coreos.com/network*"]}}}'; fi
v2get roles/locksmith >/dev/null || v2 roles/locksmith '{"role":"locksmith","permissions":{"kv":{"read":["/coreos.com/updateengine/rebootlock/*"],"write":["/coreos.com/updateengine/rebootlock/*"]}}}'
v2get roles/locksmith | grep -qF '"/coreos.com/updateengine/rebootlock/*"' || v2 roles/locksmith '{"role":"locksmith","grant":{"kv":{"read":["/coreos.com/updateengine/rebootlock/*"],"write":["/coreos.com/updateengine/rebootlock/*"]}}}'
if v2get roles/locksmith | grep -qF '"/coreos.com/updateengine/rebootlock*"'; then v2 roles/locksmith '{"role":"locksmith","revoke":{"kv":{"read":["/coreos.com/updateengine/rebootlock*"],"write":["/coreos.com/updateengine/rebootlock*"]}}}'; fi
v2get users/root >/dev/null || v2 users/root "{\"user\":\"root\",\"password\":\"$(pw)\"}"
v2get users/registrar >/dev/null || v2 users/registrar "{\"user\":\"registrar\",\"password\":\"$(pw)\"}"
v2get users/fleet >/dev/null || v2 users/fleet "{\"user\":\"fleet\",\"password\":\"$(pw)\"}"
v2get users/flannel >/dev/null || v2 users/flannel "{\"user\":\"flannel\",\"password\":\"$(pw)\"}"
v2get users/locksmith >/dev/null || v2 users/locksmith "{\"user\":\"locksmith\",\"password\":\"$(pw)\"}"
v2get users/fleet | grep -q '"role":"fleet"' || v2 users/fleet '{"user":"fleet","grant":["fleet"]}'
v2get users/flannel | grep -q '"role":"flannel"' || v2 users/flannel '{"user":"flannel","grant":["flannel"]}'
v2get users/locksmith | grep -q '"role":"locksmith"' || v2 users/locksmith '{"user":"locksmith","grant":["locksmith"]}'
if v2get roles/guest >/dev/null; then
  v2get roles/guest | grep -qF '"/*"' && v2 roles/guest '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}'
else
  v2 roles/guest '{"role":"guest"}'
fi
v2get enable | grep -q '"enabled":true' || v2 enable ''
