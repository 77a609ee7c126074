set -eu
sudo mkdir -p /etc/systemd/system/etcd-member.service.d
printf '[Service]\nEnvironment="ETCD_INITIAL_CLUSTER=%s"\nEnvironment="ETCD_INITIAL_CLUSTER_STATE=%s"\n' 'core-1=https://10.0.0.1:2380,core-2=https://10.0.0.2:2380,core-3=https://10.0.0.3:2380' 'existing' | sudo tee /etc/systemd/system/etcd-member.service.d/30-initial-cluster.conf.tmp >/dev/null
sudo mv /etc/systemd/system/etcd-member.service.d/30-initial-cluster.conf.tmp /etc/systemd/system/etcd-member.service.d/30-initial-cluster.conf
sudo systemctl daemon-reload
sudo systemctl enable --now etcd-member.service
sudo systemctl start flanneld.service fleet.socket fleet.service
settled() {
  ( systemctl is-active -q flanneld.service flannel-docker-opts.service docker.service && . /run/flannel/subnet.env && ip -4 addr show docker0 2>/dev/null | grep -qF "${FLANNEL_SUBNET%/*}" ) || return 1
  sudo curl -fsS --max-time 5 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/fleet.pem --key /etc/ssl/etcd/fleet-key.pem https://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"'
}
for i in $(seq 1 120); do
  if settled; then
    echo "$(hostname): flannel serves Docker and the etcd member is healthy"
    exit 0
  fi
  sleep 2
done
echo "$(hostname): not settled 240 s after etcd started (flannel serving Docker, then etcd healthy):" >&2
sudo systemctl status etcd-member.service flanneld.service flannel-docker-opts.service --no-pager -n 10 >&2 || true
exit 1
