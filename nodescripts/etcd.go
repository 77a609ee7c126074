package nodescripts

import (
	"fmt"
	"path"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
)

// InitialClusterDropInPath is where Bootstrap writes the initial cluster.
const InitialClusterDropInPath = "/etc/systemd/system/etcd-member.service.d/30-initial-cluster.conf"

// FlannelSubnetFile is where flanneld writes the node's subnet.
const FlannelSubnetFile = "/run/flannel/subnet.env"

// Bootstrap is what infra runs on each node (as core, over SSH) once every
// droplet's private IP is known: it writes the initial-cluster drop-in
// (state "new" for the first members, "existing" for a node joining later),
// starts etcd, flannel and fleet, and returns only once the node has
// settled: flannel has given Docker its subnet (which restarts Docker, and
// with it etcd's container: etcd-member comes back 10 s later) and the
// node's etcd member answers healthy after that. The next member add, and
// the end of `pulumi up`, wait for it (a member add right after the first
// answer hit etcd's restart). It is idempotent.
func Bootstrap(c *cloudconfig.Cluster, initialCluster, state string) string {
	return render("bootstrap.sh", struct {
		InitialCluster, State, DropIn, DropInDir string
		FlannelServesDocker, FleetCurl, Endpoint string
	}{initialCluster, state, InitialClusterDropInPath, path.Dir(InitialClusterDropInPath),
		FlannelServesDocker(), fleetCurl(c), c.LocalEndpoint()})
}

// FlannelServesDocker is a shell condition, true once flannel has given
// the node's Docker its subnet (flannel-docker-opts restarted Docker onto
// it): flanneld, flannel-docker-opts and Docker active, and docker0 holding
// the address of the subnet flanneld wrote.
func FlannelServesDocker() string {
	return renderLine("flannel-serves-docker.sh", struct{ SubnetFile string }{FlannelSubnetFile})
}

// fleetCurl is curl to the local etcd as fleet's role, bounded to 5 s.
func fleetCurl(c *cloudconfig.Cluster) string {
	return "sudo curl -fsS --max-time 5" + c.CurlTLSArgs(cloudconfig.RoleFleet)
}

// etcdctl are the parameters of parts/etcdctl-root.sh, which defines e():
// Flatcar's etcdctl on the local member, as the root role when TLS is on
// (its key is readable by root only: sudo).
type etcdctl struct {
	TLS                     bool
	Endpoint, CA, Cert, Key string
}

func etcdctlRoot(c *cloudconfig.Cluster) etcdctl {
	return etcdctl{TLS: c.TLS != nil, Endpoint: c.LocalEndpoint(), CA: cloudconfig.CAFile(),
		Cert: cloudconfig.ClientCertFile(cloudconfig.RoleRoot), Key: cloudconfig.ClientKeyFile(cloudconfig.RoleRoot)}
}

// retry are the parameters of parts/retried.sh, which runs `e ARGS` until
// etcd takes it, for up to a minute: etcd refuses a membership change while
// the cluster is settling ("unhealthy cluster" in the first seconds after a
// member joined, "not enough started members" while an added one has not
// started). The last try's error is the script's; Done is echoed on
// success.
type retry struct{ Args, Done string }

// member are the parameters of member-add.sh and member-remove.sh.
type member struct {
	Etcdctl    etcdctl
	Name, Peer string
	Retry      retry
}

func peerURL(c *cloudconfig.Cluster, privateIP string) string {
	return fmt.Sprintf("%s://%s:%d", c.Scheme(), privateIP, cloudconfig.EtcdPeerPort)
}

// MemberAdd registers a new member with the running cluster (run on an
// existing node) before the new node starts with state "existing". It
// speaks etcd's v3 API through Flatcar's etcdctl (3.5) as the root role:
// once v3 auth is on, the v2 members API answers 500 "auth: user name is
// empty" (design §10). It is idempotent: a peer URL already in the member
// list is not added again. Any other failure (etcd down, no quorum, a
// member added but not yet started) fails the script, since the new node
// could not join anyway.
func MemberAdd(c *cloudconfig.Cluster, name, privateIP string) string {
	peer := peerURL(c, privateIP)
	return render("member-add.sh", member{etcdctlRoot(c), name, peer,
		retry{"member add " + name + " --peer-urls=" + peer, fmt.Sprintf("member %s (%s) added", name, peer)}})
}

// MemberRemove removes a member from the running cluster (run on a node
// that stays) before its droplet goes, so quorum is never counted against a
// member that no longer exists. The member is found by its peer URL; one
// already gone is not an error. etcd shuts the removed member down by
// itself.
func MemberRemove(c *cloudconfig.Cluster, name, privateIP string) string {
	peer := peerURL(c, privateIP)
	return render("member-remove.sh", member{etcdctlRoot(c), name, peer,
		retry{`member remove "$id"`, fmt.Sprintf("member %s (%s) removed", name, peer)}})
}

// NodeLeave runs on a node about to be destroyed: fleet stops cleanly,
// which drops the machine and its unit states at once (~1 s), so fleet
// reschedules its units on the nodes that stay instead of waiting out the
// machine's TTL.
func NodeLeave() string { return render("node-leave.sh", nil) }

// RegistrarInstall installs the registrar binary staged (copied to core's
// home, which core can write) at path after checking its SHA-256 (atomic:
// install writes a new file, mv replaces it), and removes the staged copy.
// infra and the local cluster both run it over SSH.
func RegistrarInstall(sha256, staged, path string) string {
	return renderLine("registrar-install.sh", struct{ SHA256, Staged, Path string }{sha256, staged, path})
}

// RegistrarStagedPath is where the registrar binary is copied before
// RegistrarInstall installs it.
func RegistrarStagedPath(sha256 string) string { return "/home/core/.registrar-" + sha256[:12] }
