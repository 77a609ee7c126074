package cloudconfig

import (
	"fmt"
	"path"
	"sort"
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
// WithRoot), so no node owns the cluster.
var NodeRoles = []string{RoleFleet, RoleFlannel, RoleLocksmith, RoleRegistrar}

// RootDirVar names the shell variable holding the private directory where
// WithRoot puts root's pair for one script's run.
const RootDirVar = "DEPLOYCTL_ROOT"

// WithRoot runs script with root's certificate and key in a private
// directory made for this run ($DEPLOYCTL_ROOT, 0700 under /run) and
// removed when the script ends, however it ends: the node never keeps
// root's key. The pair arrives on the script's standard input (RootStdin),
// never in its text.
func WithRoot(script string) string {
	return "set -eu\numask 077\n" + receiveSecrets(RootDirVar, []string{"root.pem", "root-key.pem"}) + script
}

// RootStdin is the standard input of a WithRoot script: root's pair.
func RootStdin(certPEM, keyPEM string) (string, error) {
	return Secrets{"root.pem": certPEM, "root-key.pem": keyPEM}.Stdin()
}

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
// installs them over SSH (TLSInstallScript) before etcd starts.
type TLS struct{}

// CAFile is the cluster CA's certificate on a node.
func CAFile() string { return TLSDir + "/ca.pem" }

// ServerCertFile and ServerKeyFile are the node's etcd server and peer
// certificate (SANs: its private IP, 127.0.0.1, its name, localhost).
func ServerCertFile() string { return TLSDir + "/server.pem" }

// ServerKeyFile is the key of ServerCertFile.
func ServerKeyFile() string { return TLSDir + "/server-key.pem" }

// ClientCertFile is role's client certificate on a node (root's: in the
// directory WithRoot makes, as a shell expansion).
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

// v2AuthScript is AuthSetupScript's v2 part (curl, as root's certificate).
// v2 users need a password; a random one nobody keeps, since every client
// authenticates with its certificate.
func (c *Cluster) v2AuthScript() string {
	var b strings.Builder
	curl := "sudo curl -fsS" + c.CurlTLSArgs(RoleRoot)
	fmt.Fprintf(&b, "v2() { %s -o /dev/null -X PUT -H 'Content-Type: application/json' %s/v2/auth/\"$1\" -d \"$2\"; }\n", curl, c.LocalEndpoint())
	fmt.Fprintf(&b, "v2get() { %s %s/v2/auth/\"$1\" 2>/dev/null; }\n", curl, c.LocalEndpoint())
	b.WriteString("pw() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \\n'; }\n")
	roles := []string{RoleFleet, RoleFlannel, RoleLocksmith}
	for _, r := range roles {
		fmt.Fprintf(&b, "v2get roles/%[1]s >/dev/null || v2 roles/%[1]s '{\"role\":\"%[1]s\",\"permissions\":{\"kv\":{\"read\":[\"%[2]s\"],\"write\":[\"%[2]s\"]}}}'\n", r, V2Prefixes[r])
		// A role set up with the pattern that also matched siblings: the
		// new grant first, then the old one revoked.
		fmt.Fprintf(&b, "v2get roles/%[1]s | grep -qF '\"%[2]s\"' || v2 roles/%[1]s '{\"role\":\"%[1]s\",\"grant\":{\"kv\":{\"read\":[\"%[2]s\"],\"write\":[\"%[2]s\"]}}}'\n", r, V2Prefixes[r])
		fmt.Fprintf(&b, "if v2get roles/%[1]s | grep -qF '\"%[2]s\"'; then v2 roles/%[1]s '{\"role\":\"%[1]s\",\"revoke\":{\"kv\":{\"read\":[\"%[2]s\"],\"write\":[\"%[2]s\"]}}}'; fi\n", r, v2OldPrefixes[r])
	}
	for _, u := range append([]string{RoleRoot, RoleRegistrar}, roles...) {
		fmt.Fprintf(&b, "v2get users/%[1]s >/dev/null || v2 users/%[1]s \"{\\\"user\\\":\\\"%[1]s\\\",\\\"password\\\":\\\"$(pw)\\\"}\"\n", u)
	}
	for _, r := range roles {
		fmt.Fprintf(&b, "v2get users/%[1]s | grep -q '\"role\":\"%[1]s\"' || v2 users/%[1]s '{\"user\":\"%[1]s\",\"grant\":[\"%[1]s\"]}'\n", r)
	}
	// The guest role is what etcd gives a request with no user it knows
	// (by default read-write on everything): it keeps nothing.
	b.WriteString(`if v2get roles/guest >/dev/null; then
  v2get roles/guest | grep -qF '"/*"' && v2 roles/guest '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}'
else
  v2 roles/guest '{"role":"guest"}'
fi
v2get enable | grep -q '"enabled":true' || v2 enable ''
`)
	return b.String()
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

// TLSInstallScript writes the node's TLS files (keys 0600: the server key
// owned by etcd, which etcd-member runs as; the others by root) atomically,
// each through a temp file and a rename. The contents arrive on its
// standard input (files.Secrets), never in its text. Run before
// BootstrapScript; it is idempotent.
func TLSInstallScript(files NodeTLSFiles) string {
	paths := files.paths("")
	var b strings.Builder
	b.WriteString("set -eu\numask 077\n")
	b.WriteString(receiveSecrets("staged", secretNames(paths)))
	fmt.Fprintf(&b, "sudo install -d -m 0755 %s\n", TLSDir)
	// root's pair is never kept on a node (an older deployctl installed it).
	fmt.Fprintf(&b, "sudo rm -f %[1]s/root.pem %[1]s/root-key.pem\n", TLSDir)
	for _, p := range paths {
		owner, mode := tlsFileOwnerMode(p)
		fmt.Fprintf(&b, "sudo cp \"$staged/%s\" %s.tmp\n", path.Base(p), p)
		fmt.Fprintf(&b, "sudo chown %s %s.tmp && sudo chmod %s %s.tmp && sudo mv %s.tmp %s\n", owner, p, mode, p, p, p)
	}
	return b.String()
}

// paths are the files' paths in order, but skip.
func (files NodeTLSFiles) paths(skip string) []string {
	paths := make([]string, 0, len(files))
	for p := range files {
		if p != skip {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths
}

// tlsFileOwnerMode is who owns a node's TLS file and its mode: keys 0600,
// the server key owned by etcd (etcd-member runs as etcd), the rest root's.
func tlsFileOwnerMode(path string) (owner, mode string) {
	owner, mode = "root:root", "0644"
	if strings.HasSuffix(path, "-key.pem") {
		mode = "0600"
	}
	if path == ServerKeyFile() {
		owner = "etcd:etcd"
	}
	return owner, mode
}

// TLSFirstInstallScript is TLSInstallScript on a node that has no TLS files
// yet (its server certificate, written last, is missing); on a node that
// has them it changes nothing: new certificates reach a running node only
// through the rotation passes (RotateTrustScript), one node at a time.
func TLSFirstInstallScript(files NodeTLSFiles) string {
	return fmt.Sprintf("if sudo test -s %s; then echo \"$(hostname): TLS files present; a new CA or certificates come by the rotation passes\"; exit 0; fi\n%s",
		ServerCertFile(), TLSInstallScript(files))
}

// V2Prefixes are the v2 keys each role that speaks etcd's v2 API may read
// and write once v2 auth is on (fleet 1.0.0, flannel v0.14 and locksmith
// speak only v2; the registrar speaks only v3 and gets nothing in v2). etcd
// matches a trailing * as a plain string prefix, so each pattern ends in
// "/*": everything under the directory (recursive gets and watches of its
// subdirectories, which is all these clients read), and not a sibling
// such as /_coreos.com/fleetX, which "/_coreos.com/fleet*" also matched.
var V2Prefixes = map[string]string{
	RoleFleet:     "/_coreos.com/fleet/*",
	RoleFlannel:   "/coreos.com/network/*",
	RoleLocksmith: "/coreos.com/updateengine/rebootlock/*",
}

// v2OldPrefixes are the patterns clusters set up before V2Prefixes ended
// in "/*"; the auth setup grants the new one and then revokes these.
var v2OldPrefixes = map[string]string{
	RoleFleet:     "/_coreos.com/fleet*",
	RoleFlannel:   "/coreos.com/network*",
	RoleLocksmith: "/coreos.com/updateengine/rebootlock*",
}

// AuthSetupScript turns on etcd's auth once the cluster is up (run on one
// node as the root role). v3: users named after the client certificates'
// common names, the registrar's role limited to RegistrarKeyPrefix, then
// auth on. v2 (which v3 auth does not govern, design §10): the same users,
// which etcd 3.5 maps from a client certificate's common name, each role
// limited to its V2Prefixes, the guest role (any request without a known
// user) stripped of every permission, then v2 auth on. Idempotent.
func (c *Cluster) AuthSetupScript() string {
	return fmt.Sprintf(`set -eu
%s
for i in $(seq 1 60); do e endpoint health >/dev/null 2>&1 && break; sleep 2; done
e user get root >/dev/null 2>&1 || e user add root --no-password
e user grant-role root root
e role get registrar >/dev/null 2>&1 || e role add registrar
e role grant-permission registrar --prefix=true readwrite %s
e user get registrar >/dev/null 2>&1 || e user add registrar --no-password
e user grant-role registrar registrar
e auth status 2>/dev/null | grep -q 'Authentication Status: true' || e auth enable
%s`, c.etcdctlRoot(), RegistrarKeyPrefix, c.v2AuthScript())
}
