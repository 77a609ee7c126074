set -eu
sudo mkdir -p {{.DropInDir}}
printf '[Service]\nEnvironment="ETCD_INITIAL_CLUSTER=%s"\nEnvironment="ETCD_INITIAL_CLUSTER_STATE=%s"\n' {{q .InitialCluster}} {{q .State}} | sudo tee {{.DropIn}}.tmp >/dev/null
sudo mv {{.DropIn}}.tmp {{.DropIn}}
sudo systemctl daemon-reload
sudo systemctl enable --now etcd-member.service
sudo systemctl start flanneld.service fleet.socket fleet.service
settled() {
  ( {{.FlannelServesDocker}} ) || return 1
  {{.FleetCurl}} {{.Endpoint}}/health 2>/dev/null | grep -q '"health":"true"'
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
