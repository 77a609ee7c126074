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
// an existing node) before the new node starts with state "existing". It is
// idempotent: a peer URL already in the member list is not added again. Any
// other failure (etcd down, v2 API off, no quorum) fails the script, since
// the new node could not join anyway.
func (c *Cluster) MemberAddScript(name, privateIP string) string {
	peer := fmt.Sprintf("%s://%s:%d", c.scheme(), privateIP, EtcdPeerPort)
	curl := "curl -fsS" + c.CurlTLSArgs(RoleRoot)
	if c.TLS != nil {
		curl = "sudo " + curl // the root role's key is readable by root only
	}
	return fmt.Sprintf(`set -eu
if %[4]s %[1]s/v2/members | grep -qF '"%[2]s"'; then
  echo "member %[3]s (%[2]s) already added"
else
  %[4]s -o /dev/null -X POST %[1]s/v2/members -H 'Content-Type: application/json' -d '{"peerURLs":["%[2]s"]}'
  echo "member %[3]s (%[2]s) added"
fi
`, c.LocalEndpoint(), peer, name, curl)
}
