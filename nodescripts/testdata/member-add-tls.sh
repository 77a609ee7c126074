set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/ssl/etcd/ca.pem ETCDCTL_CERT=$DEPLOYCTL_ROOT/root.pem ETCDCTL_KEY=$DEPLOYCTL_ROOT/root-key.pem
e() { sudo -E /usr/bin/etcdctl "$@"; }
members=$(e member list) # fails the script when the local member does not answer
if echo "$members" | grep -qF 'https://10.0.0.4:2380'; then
  echo "member core-4 (https://10.0.0.4:2380) already added"
  exit 0
fi
for i in $(seq 1 30); do
  if e member add core-4 --peer-urls=https://10.0.0.4:2380 >/dev/null 2>&1; then echo "member core-4 (https://10.0.0.4:2380) added"; exit 0; fi
  sleep 2
done
e member add core-4 --peer-urls=https://10.0.0.4:2380 >/dev/null
echo "member core-4 (https://10.0.0.4:2380) added"
