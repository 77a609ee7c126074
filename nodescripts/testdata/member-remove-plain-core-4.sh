set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=http://127.0.0.1:2379
e() { /usr/bin/etcdctl "$@"; }
members=$(e member list) # fails the script when the local member does not answer
id=$(echo "$members" | grep -F 'http://10.0.0.4:2380' | cut -d, -f1)
if [ -z "$id" ]; then
  echo "member core-4 (http://10.0.0.4:2380) already removed"
  exit 0
fi
for i in $(seq 1 30); do
  if e member remove "$id" >/dev/null 2>&1; then echo "member core-4 (http://10.0.0.4:2380) removed"; exit 0; fi
  sleep 2
done
e member remove "$id" >/dev/null
echo "member core-4 (http://10.0.0.4:2380) removed"
