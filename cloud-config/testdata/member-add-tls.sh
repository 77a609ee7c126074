set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/ssl/etcd/ca.pem ETCDCTL_CERT=/etc/ssl/etcd/root.pem ETCDCTL_KEY=/etc/ssl/etcd/root-key.pem
e() { sudo -E /usr/bin/etcdctl "$@"; }
if e member list | grep -qF 'https://10.0.0.4:2380'; then
  echo "member core-4 (https://10.0.0.4:2380) already added"
else
  e member add core-4 --peer-urls=https://10.0.0.4:2380 >/dev/null
  echo "member core-4 (https://10.0.0.4:2380) added"
fi
