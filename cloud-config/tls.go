package cloudconfig

import (
	"fmt"
	"strings"
)

// TLSDir holds every node's etcd TLS files. etcd-member gets it as
// ETCD_SSL_DIR, which Flatcar's etcd wrapper mounts into etcd's container;
// Flatcar's flannel wrapper mounts /etc/ssl/etcd into flanneld's.
const TLSDir = "/etc/ssl/etcd"

// EtcdContainerTLSDir is TLSDir as etcd sees it: Flatcar's etcd-wrapper
// mounts the host's ETCD_SSL_DIR at /etc/ssl/certs inside etcd's container
// (read-only) and runs etcd as user etcd (design §10), so every ETCD_*_FILE
// names /etc/ssl/certs/..., whatever ETCD_SSL_DIR is on the host.
const EtcdContainerTLSDir = "/etc/ssl/certs"

// etcdSees is a file under TLSDir as etcd-member's container sees it.
func etcdSees(hostPath string) string {
	return EtcdContainerTLSDir + strings.TrimPrefix(hostPath, TLSDir)
}

// FlannelTLSDir is where flanneld reads its certificate: Flatcar's
// flannel wrapper runs flanneld in Docker with only /run mounted from the
// host, so the flanneld drop-in copies flannel's files there (tmpfs, 0600)
// before each start.
const FlannelTLSDir = "/run/flannel/etcd"

// Client roles: each etcd client on a node has a certificate of its own,
// whose common name is its etcd user when v3 auth is on.
const (
	RoleFleet     = "fleet"
	RoleFlannel   = "flannel"
	RoleLocksmith = "locksmith"
	RoleRegistrar = "registrar"
	// RoleRoot is etcd's root user: the bootstrap scripts on the nodes and
	// the operator's etcdctl.
	RoleRoot = "root"
)

// PeerCN is the common name of every node's etcd server and peer
// certificate (its SANs name the node): etcd's peer port accepts only a
// client certificate with it (ETCD_PEER_CERT_ALLOWED_CN), so no role's
// certificate (the registrar's, say) can talk to the peer API.
const PeerCN = "etcd-peer"

// ClientRoles are the roles the cluster's PKI makes a certificate for.
var ClientRoles = []string{RoleFleet, RoleFlannel, RoleLocksmith, RoleRegistrar, RoleRoot}

// NodeRoles are the roles whose certificates every node holds: all but
// root, which a node holds only while a script that needs it runs (see
// nodescripts.WithRoot), so no node owns the cluster.
var NodeRoles = []string{RoleFleet, RoleFlannel, RoleLocksmith, RoleRegistrar}

// RootDirVar names the shell variable holding the private directory where
// nodescripts.WithRoot puts root's pair for one script's run.
const RootDirVar = "DEPLOYCTL_ROOT"

// RegistrarKeyPrefix is the only key prefix the registrar's etcd user may
// read and write once v3 auth is on.
const RegistrarKeyPrefix = "/services/"

// TLS turns on mutual TLS for etcd across the cluster: etcd serves its
// clients and peers over https and requires a client certificate signed by
// the cluster's CA; fleet, flannel, locksmith, the registrar and the
// bootstrap scripts each use a certificate of their own role.
//
// The files are not in user data: a node's server certificate names its
// private IP, known only once the droplet exists, and DigitalOcean serves
// user data to anything on the droplet through its metadata service. infra
// installs them over SSH (nodescripts.TLSInstall) before etcd starts.
type TLS struct{}

// CAFile is the cluster CA's certificate on a node.
func CAFile() string { return TLSDir + "/ca.pem" }

// ServerCertFile and ServerKeyFile are the node's etcd server and peer
// certificate (SANs: its private IP, 127.0.0.1, its name, localhost).
func ServerCertFile() string { return TLSDir + "/server.pem" }

// ServerKeyFile is the key of ServerCertFile.
func ServerKeyFile() string { return TLSDir + "/server-key.pem" }

// ClientCertFile is role's client certificate on a node (root's: in the
// directory nodescripts.WithRoot makes, as a shell expansion).
func ClientCertFile(role string) string {
	if role == RoleRoot {
		return "$" + RootDirVar + "/root.pem"
	}
	return fmt.Sprintf("%s/%s.pem", TLSDir, role)
}

// ClientKeyFile is the key of ClientCertFile.
func ClientKeyFile(role string) string {
	if role == RoleRoot {
		return "$" + RootDirVar + "/root-key.pem"
	}
	return fmt.Sprintf("%s/%s-key.pem", TLSDir, role)
}

// CurlTLSArgs are curl's options to reach etcd as role (empty without TLS).
func (c *Cluster) CurlTLSArgs(role string) string {
	if c.TLS == nil {
		return ""
	}
	return fmt.Sprintf(" --cacert %s --cert %s --key %s", CAFile(), ClientCertFile(role), ClientKeyFile(role))
}

// NodeTLSFiles are the PEM contents a node needs, by path.
type NodeTLSFiles map[string]string

// TLSFiles lays out one node's files: the CA, the node's server pair and
// every role's client pair (pems maps "ca", "server", "server-key", and
// "<role>", "<role>-key" to PEM text).
func TLSFiles(pems map[string]string) (NodeTLSFiles, error) {
	files := NodeTLSFiles{CAFile(): pems["ca"], ServerCertFile(): pems["server"], ServerKeyFile(): pems["server-key"]}
	for _, r := range NodeRoles {
		files[ClientCertFile(r)], files[ClientKeyFile(r)] = pems[r], pems[r+"-key"]
	}
	for path, pem := range files {
		if !strings.HasPrefix(pem, "-----BEGIN ") {
			return nil, fmt.Errorf("TLS file %s: no PEM given", path)
		}
	}
	return files, nil
}
