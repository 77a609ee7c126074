set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/ssl/etcd/ca.pem ETCDCTL_CERT=$DEPLOYCTL_ROOT/root.pem ETCDCTL_KEY=$DEPLOYCTL_ROOT/root-key.pem
e() { sudo -E /usr/bin/etcdctl "$@"; }
members=$(e member list) # fails the script when the local member does not answer
id=$(echo "$members" | grep -F 'https://10.10.3.7:2380' | cut -d, -f1)
if [ -z "$id" ]; then
  echo "member core-12 (https://10.10.3.7:2380) already removed"
  exit 0
fi
for i in $(seq 1 30); do
  if e member remove "$id" >/dev/null 2>&1; then echo "member core-12 (https://10.10.3.7:2380) removed"; exit 0; fi
  sleep 2
done
e member remove "$id" >/dev/null
echo "member core-12 (https://10.10.3.7:2380) removed"
