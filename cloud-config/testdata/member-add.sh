set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=http://127.0.0.1:2379
e() { /usr/bin/etcdctl "$@"; }
if e member list | grep -qF 'http://10.0.0.4:2380'; then
  echo "member core-4 (http://10.0.0.4:2380) already added"
else
  e member add core-4 --peer-urls=http://10.0.0.4:2380 >/dev/null
  echo "member core-4 (http://10.0.0.4:2380) added"
fi
