set -eu
if sudo curl -fsS --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/root.pem --key /etc/ssl/etcd/root-key.pem https://127.0.0.1:2379/v2/members | grep -qF '"https://10.0.0.4:2380"'; then
  echo "member core-4 (https://10.0.0.4:2380) already added"
else
  sudo curl -fsS --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/root.pem --key /etc/ssl/etcd/root-key.pem -o /dev/null -X POST https://127.0.0.1:2379/v2/members -H 'Content-Type: application/json' -d '{"peerURLs":["https://10.0.0.4:2380"]}'
  echo "member core-4 (https://10.0.0.4:2380) added"
fi
