package cloudconfig

import (
	"fmt"
	"path"
)

// InitialClusterDropInPath is where BootstrapScript writes the initial
// cluster.
const InitialClusterDropInPath = "/etc/systemd/system/etcd-member.service.d/30-initial-cluster.conf"

// BootstrapScript is what infra runs on each node (as core, over SSH)
// once every droplet's private IP is known: it writes the initial-cluster
// drop-in (state "new" for the first members, "existing" for a node
// joining later), starts etcd, flannel and fleet, and returns only once
// the node has settled: flannel has given Docker its subnet (which
// restarts Docker, and with it etcd's container: etcd-member comes back
// 10 s later) and the node's etcd member answers healthy after that. The
// next member add, and the end of `pulumi up`, wait for it (a member add
// right after the first answer hit etcd's restart). It is idempotent.
func (c *Cluster) BootstrapScript(initialCluster, state string) string {
	return fmt.Sprintf(`set -eu
sudo mkdir -p %[4]s
printf '[Service]\nEnvironment="ETCD_INITIAL_CLUSTER=%%s"\nEnvironment="ETCD_INITIAL_CLUSTER_STATE=%%s"\n' '%[1]s' '%[2]s' | sudo tee %[3]s.tmp >/dev/null
sudo mv %[3]s.tmp %[3]s
sudo systemctl daemon-reload
sudo systemctl enable --now etcd-member.service
sudo systemctl start flanneld.service fleet.socket fleet.service
settled() {
  ( %[7]s ) || return 1
  %[5]s %[6]s/health 2>/dev/null | grep -q '"health":"true"'
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
`, initialCluster, state, InitialClusterDropInPath, path.Dir(InitialClusterDropInPath), c.fleetCurl(), c.LocalEndpoint(), FlannelServesDocker)
}

// FlannelSubnetFile is where flanneld writes the node's subnet.
const FlannelSubnetFile = "/run/flannel/subnet.env"

// FlannelServesDocker is a shell condition, true once flannel has given
// the node's Docker its subnet (flannel-docker-opts restarted Docker onto
// it): flanneld, flannel-docker-opts and Docker active, and docker0 holding
// the address of the subnet flanneld wrote.
const FlannelServesDocker = `systemctl is-active -q flanneld.service flannel-docker-opts.service docker.service && . ` + FlannelSubnetFile +
	` && ip -4 addr show docker0 2>/dev/null | grep -qF "${FLANNEL_SUBNET%/*}"`

// MemberAddScript registers a new member with the running cluster (run on
// an existing node) before the new node starts with state "existing". It
// speaks etcd's v3 API through Flatcar's etcdctl (3.5) as the root role:
// once v3 auth is on, the v2 members API answers 500 "auth: user name is
// empty" (design §10). It is idempotent: a peer URL already in the member
// list is not added again. Any other failure (etcd down, no quorum, a
// member added but not yet started) fails the script, since the new node
// could not join anyway.
func (c *Cluster) MemberAddScript(name, privateIP string) string {
	peer := fmt.Sprintf("%s://%s:%d", c.Scheme(), privateIP, EtcdPeerPort)
	return fmt.Sprintf(`set -eu
%s
members=$(e member list) # fails the script when the local member does not answer
if echo "$members" | grep -qF '%[2]s'; then
  echo "member %[3]s (%[2]s) already added"
  exit 0
fi
%[4]s
`, c.etcdctlRoot(), peer, name, retried("member add "+name+" --peer-urls="+peer, fmt.Sprintf("member %s (%s) added", name, peer)))
}

// retried runs `e ARGS` until etcd takes it, for up to a minute: etcd
// refuses a membership change while the cluster is settling ("unhealthy
// cluster" in the first seconds after a member joined, "not enough started
// members" while an added one has not started). The last try's error is
// the script's.
func retried(args, done string) string {
	return fmt.Sprintf(`for i in $(seq 1 30); do
  if e %[1]s >/dev/null 2>&1; then echo "%[2]s"; exit 0; fi
  sleep 2
done
e %[1]s >/dev/null
echo "%[2]s"`, args, done)
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

// MemberRemoveScript removes a member from the running cluster (run on a
// node that stays) before its droplet goes, so quorum is never counted
// against a member that no longer exists. The member is found by its peer
// URL; one already gone is not an error. etcd shuts the removed member
// down by itself.
func (c *Cluster) MemberRemoveScript(name, privateIP string) string {
	peer := fmt.Sprintf("%s://%s:%d", c.Scheme(), privateIP, EtcdPeerPort)
	return fmt.Sprintf(`set -eu
%s
members=$(e member list) # fails the script when the local member does not answer
id=$(echo "$members" | grep -F '%[2]s' | cut -d, -f1)
if [ -z "$id" ]; then
  echo "member %[3]s (%[2]s) already removed"
  exit 0
fi
%[4]s
`, c.etcdctlRoot(), peer, name, retried(`member remove "$id"`, fmt.Sprintf("member %s (%s) removed", name, peer)))
}

// NodeLeaveScript runs on a node about to be destroyed: fleet stops
// cleanly, which drops the machine and its unit states at once (~1 s), so
// fleet reschedules its units on the nodes that stay instead of waiting
// out the machine's TTL.
const NodeLeaveScript = `set -u
sudo systemctl stop fleet.service fleet.socket || true
echo "fleet stopped: its units move to the other machines"
`

// RegistrarInstallScript installs the registrar binary staged (copied to
// core's home, which core can write) at path after checking its SHA-256
// (atomic: install writes a new file, mv replaces it), and removes the
// staged copy. infra and the local cluster both run it over SSH.
func RegistrarInstallScript(sha256, staged, path string) string {
	return fmt.Sprintf("set -eu; echo '%s  %s' | sha256sum -c - >/dev/null; sudo mkdir -p /opt/bin; sudo install -m 0755 %s %s.new; sudo mv %s.new %s; rm -f %s",
		sha256, staged, staged, path, path, path, staged)
}

// RegistrarStagedPath is where the registrar binary is copied before
// RegistrarInstallScript installs it.
func RegistrarStagedPath(sha256 string) string { return "/home/core/.registrar-" + sha256[:12] }
