if sudo test -s /etc/ssl/etcd/server.pem; then echo "$(hostname): TLS files present; a new CA or certificates come by the rotation passes"; exit 0; fi
set -eu
umask 077
staged=$(sudo mktemp -d /run/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$staged"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^#deployctl-secret [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$staged"
for f in ca.pem server-key.pem server.pem; do
  sudo test -s "$staged/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
sudo install -d -m 0755 /etc/ssl/etcd
sudo rm -f /etc/ssl/etcd/root.pem /etc/ssl/etcd/root-key.pem
sudo cp "$staged/ca.pem" /etc/ssl/etcd/ca.pem.tmp
sudo chown root:root /etc/ssl/etcd/ca.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/ca.pem.tmp && sudo mv /etc/ssl/etcd/ca.pem.tmp /etc/ssl/etcd/ca.pem
sudo cp "$staged/server-key.pem" /etc/ssl/etcd/server-key.pem.tmp
sudo chown etcd:etcd /etc/ssl/etcd/server-key.pem.tmp && sudo chmod 0600 /etc/ssl/etcd/server-key.pem.tmp && sudo mv /etc/ssl/etcd/server-key.pem.tmp /etc/ssl/etcd/server-key.pem
sudo cp "$staged/server.pem" /etc/ssl/etcd/server.pem.tmp
sudo chown root:root /etc/ssl/etcd/server.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/server.pem.tmp && sudo mv /etc/ssl/etcd/server.pem.tmp /etc/ssl/etcd/server.pem
