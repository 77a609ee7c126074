package cloudconfig

import "fmt"

// InitialClusterDropInPath is where BootstrapScript writes the initial
// cluster.
const InitialClusterDropInPath = "/etc/systemd/system/etcd-member.service.d/30-initial-cluster.conf"

// BootstrapScript is what infra runs on each node (as core, over SSH)
// once every droplet's private IP is known: it writes the initial-cluster
// drop-in (state "new" for the first members, "existing" for a node
// joining later) and starts etcd, flannel and fleet. It is idempotent.
func BootstrapScript(initialCluster, state string) string {
	return fmt.Sprintf(`set -eu
sudo mkdir -p /etc/systemd/system/etcd-member.service.d
printf '[Service]\nEnvironment="ETCD_INITIAL_CLUSTER=%%s"\nEnvironment="ETCD_INITIAL_CLUSTER_STATE=%%s"\n' '%s' '%s' | sudo tee %s.tmp >/dev/null
sudo mv %s.tmp %s
sudo systemctl daemon-reload
sudo systemctl enable --now etcd-member.service
sudo systemctl start flanneld.service fleet.socket fleet.service
`, initialCluster, state, InitialClusterDropInPath, InitialClusterDropInPath, InitialClusterDropInPath)
}

// MemberAddScript registers a new member with the running cluster (run on
// an existing node) before the new node starts with state "existing". It
// speaks etcd's v3 API through Flatcar's etcdctl (3.5) as the root role:
// once v3 auth is on, the v2 members API answers 500 "auth: user name is
// empty" (design §10). It is idempotent: a peer URL already in the member
// list is not added again. Any other failure (etcd down, no quorum, a
// member added but not yet started) fails the script, since the new node
// could not join anyway.
func (c *Cluster) MemberAddScript(name, privateIP string) string {
	peer := fmt.Sprintf("%s://%s:%d", c.scheme(), privateIP, EtcdPeerPort)
	return fmt.Sprintf(`set -eu
%s
if e member list | grep -qF '%[2]s'; then
  echo "member %[3]s (%[2]s) already added"
else
  e member add %[3]s --peer-urls=%[2]s >/dev/null
  echo "member %[3]s (%[2]s) added"
fi
`, c.etcdctlRoot(), peer, name)
}

// etcdctlRoot defines e(): Flatcar's etcdctl on the local member, as the
// root role when TLS is on (its key is readable by root only: sudo).
func (c *Cluster) etcdctlRoot() string {
	if c.TLS == nil {
		return fmt.Sprintf("export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=%s\ne() { /usr/bin/etcdctl \"$@\"; }", c.LocalEndpoint())
	}
	return fmt.Sprintf("export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=%s ETCDCTL_CACERT=%s ETCDCTL_CERT=%s ETCDCTL_KEY=%s\ne() { sudo -E /usr/bin/etcdctl \"$@\"; }",
		c.LocalEndpoint(), CAFile(), ClientCertFile(RoleRoot), ClientKeyFile(RoleRoot))
}
