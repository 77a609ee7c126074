set -eu
umask 077
DEPLOYCTL_ROOT=$(sudo mktemp -d /run/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$DEPLOYCTL_ROOT"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^#deployctl-secret [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$DEPLOYCTL_ROOT"
for f in root.pem root-key.pem; do
  sudo test -s "$DEPLOYCTL_ROOT/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=http://127.0.0.1:2379
e() { /usr/bin/etcdctl "$@"; }
members=$(e member list) # fails the script when the local member does not answer
if echo "$members" | grep -qF 'http://10.0.0.4:2380'; then
  echo "member core-4 (http://10.0.0.4:2380) already added"
  exit 0
fi
for i in $(seq 1 30); do
  if e member add core-4 --peer-urls=http://10.0.0.4:2380 >/dev/null 2>&1; then echo "member core-4 (http://10.0.0.4:2380) added"; exit 0; fi
  sleep 2
done
e member add core-4 --peer-urls=http://10.0.0.4:2380 >/dev/null
echo "member core-4 (http://10.0.0.4:2380) added"
