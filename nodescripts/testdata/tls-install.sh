set -eu
umask 077
staged=$(sudo mktemp -d /run/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$staged"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^#deployctl-secret [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$staged"
for f in ca.pem flannel-key.pem flannel.pem fleet-key.pem fleet.pem locksmith-key.pem locksmith.pem registrar-key.pem registrar.pem server-key.pem server.pem; do
  sudo test -s "$staged/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
sudo install -d -m 0755 /etc/ssl/etcd
sudo rm -f /etc/ssl/etcd/root.pem /etc/ssl/etcd/root-key.pem
sudo cp "$staged/ca.pem" /etc/ssl/etcd/ca.pem.tmp
sudo chown root:root /etc/ssl/etcd/ca.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/ca.pem.tmp && sudo mv /etc/ssl/etcd/ca.pem.tmp /etc/ssl/etcd/ca.pem
sudo cp "$staged/flannel-key.pem" /etc/ssl/etcd/flannel-key.pem.tmp
sudo chown root:root /etc/ssl/etcd/flannel-key.pem.tmp && sudo chmod 0600 /etc/ssl/etcd/flannel-key.pem.tmp && sudo mv /etc/ssl/etcd/flannel-key.pem.tmp /etc/ssl/etcd/flannel-key.pem
sudo cp "$staged/flannel.pem" /etc/ssl/etcd/flannel.pem.tmp
sudo chown root:root /etc/ssl/etcd/flannel.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/flannel.pem.tmp && sudo mv /etc/ssl/etcd/flannel.pem.tmp /etc/ssl/etcd/flannel.pem
sudo cp "$staged/fleet-key.pem" /etc/ssl/etcd/fleet-key.pem.tmp
sudo chown root:root /etc/ssl/etcd/fleet-key.pem.tmp && sudo chmod 0600 /etc/ssl/etcd/fleet-key.pem.tmp && sudo mv /etc/ssl/etcd/fleet-key.pem.tmp /etc/ssl/etcd/fleet-key.pem
sudo cp "$staged/fleet.pem" /etc/ssl/etcd/fleet.pem.tmp
sudo chown root:root /etc/ssl/etcd/fleet.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/fleet.pem.tmp && sudo mv /etc/ssl/etcd/fleet.pem.tmp /etc/ssl/etcd/fleet.pem
sudo cp "$staged/locksmith-key.pem" /etc/ssl/etcd/locksmith-key.pem.tmp
sudo chown root:root /etc/ssl/etcd/locksmith-key.pem.tmp && sudo chmod 0600 /etc/ssl/etcd/locksmith-key.pem.tmp && sudo mv /etc/ssl/etcd/locksmith-key.pem.tmp /etc/ssl/etcd/locksmith-key.pem
sudo cp "$staged/locksmith.pem" /etc/ssl/etcd/locksmith.pem.tmp
sudo chown root:root /etc/ssl/etcd/locksmith.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/locksmith.pem.tmp && sudo mv /etc/ssl/etcd/locksmith.pem.tmp /etc/ssl/etcd/locksmith.pem
sudo cp "$staged/registrar-key.pem" /etc/ssl/etcd/registrar-key.pem.tmp
sudo chown root:root /etc/ssl/etcd/registrar-key.pem.tmp && sudo chmod 0600 /etc/ssl/etcd/registrar-key.pem.tmp && sudo mv /etc/ssl/etcd/registrar-key.pem.tmp /etc/ssl/etcd/registrar-key.pem
sudo cp "$staged/registrar.pem" /etc/ssl/etcd/registrar.pem.tmp
sudo chown root:root /etc/ssl/etcd/registrar.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/registrar.pem.tmp && sudo mv /etc/ssl/etcd/registrar.pem.tmp /etc/ssl/etcd/registrar.pem
sudo cp "$staged/server-key.pem" /etc/ssl/etcd/server-key.pem.tmp
sudo chown etcd:etcd /etc/ssl/etcd/server-key.pem.tmp && sudo chmod 0600 /etc/ssl/etcd/server-key.pem.tmp && sudo mv /etc/ssl/etcd/server-key.pem.tmp /etc/ssl/etcd/server-key.pem
sudo cp "$staged/server.pem" /etc/ssl/etcd/server.pem.tmp
sudo chown root:root /etc/ssl/etcd/server.pem.tmp && sudo chmod 0644 /etc/ssl/etcd/server.pem.tmp && sudo mv /etc/ssl/etcd/server.pem.tmp /etc/ssl/etcd/server.pem
