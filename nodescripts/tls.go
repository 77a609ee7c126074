package nodescripts

import (
	"path"
	"sort"
	"strings"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
)

// WithRoot runs script with root's certificate and key in a private
// directory made for this run ($DEPLOYCTL_ROOT, 0700 under /run) and
// removed when the script ends, however it ends: the node never keeps
// root's key. The pair arrives on the script's standard input (RootStdin),
// never in its text.
func WithRoot(script string) string {
	return render("with-root.sh", receive(cloudconfig.RootDirVar, []string{"root.pem", "root-key.pem"})) + script
}

// RootStdin is the standard input of a WithRoot script: root's pair.
func RootStdin(certPEM, keyPEM string) (string, error) {
	return Secrets{"root.pem": certPEM, "root-key.pem": keyPEM}.Stdin()
}

// tlsFile is one file a script installs from its standard input.
type tlsFile struct{ Name, Path, Owner, Mode string }

// tlsFiles are files' paths in order, but skip, with the owner and mode
// each gets: keys 0600, the server key owned by etcd (etcd-member runs as
// etcd), the rest root's 0644.
func tlsFiles(files cloudconfig.NodeTLSFiles, skip string) []tlsFile {
	paths := make([]string, 0, len(files))
	for p := range files {
		if p != skip {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	out := make([]tlsFile, len(paths))
	for i, p := range paths {
		out[i] = tlsFile{Name: path.Base(p), Path: p, Owner: "root:root", Mode: "0644"}
		if strings.HasSuffix(p, "-key.pem") {
			out[i].Mode = "0600"
		}
		if p == cloudconfig.ServerKeyFile() {
			out[i].Owner = "etcd:etcd"
		}
	}
	return out
}

func names(files []tlsFile) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Name
	}
	return out
}

// tlsInstall are the parameters of tls-install.sh.
type tlsInstall struct {
	Secrets received
	Dir     string
	Files   []tlsFile
}

func newTLSInstall(files cloudconfig.NodeTLSFiles) tlsInstall {
	fs := tlsFiles(files, "")
	return tlsInstall{Secrets: receive("staged", names(fs)), Dir: cloudconfig.TLSDir, Files: fs}
}

// TLSInstall writes the node's TLS files (keys 0600: the server key owned
// by etcd, which etcd-member runs as; the others by root) atomically, each
// through a temp file and a rename. The contents arrive on its standard
// input (TLSSecrets), never in its text. Run before Bootstrap; it is
// idempotent.
func TLSInstall(files cloudconfig.NodeTLSFiles) string {
	return render("tls-install.sh", newTLSInstall(files))
}

// TLSFirstInstall is TLSInstall on a node that has no TLS files yet (its
// server certificate, written last, is missing); on a node that has them
// it changes nothing: new certificates reach a running node only through
// the rotation passes (RotateTrust), one node at a time.
func TLSFirstInstall(files cloudconfig.NodeTLSFiles) string {
	return render("tls-first-install.sh", struct {
		tlsInstall
		ServerCert string
	}{newTLSInstall(files), cloudconfig.ServerCertFile()})
}

// V2Prefixes are the v2 keys each role that speaks etcd's v2 API may read
// and write once v2 auth is on (fleet 1.0.0, flannel v0.14 and locksmith
// speak only v2; the registrar speaks only v3 and gets nothing in v2). etcd
// matches a trailing * as a plain string prefix, so each pattern ends in
// "/*": everything under the directory (recursive gets and watches of its
// subdirectories, which is all these clients read), and not a sibling
// such as /_coreos.com/fleetX, which "/_coreos.com/fleet*" also matched.
var V2Prefixes = map[string]string{
	cloudconfig.RoleFleet:     "/_coreos.com/fleet/*",
	cloudconfig.RoleFlannel:   "/coreos.com/network/*",
	cloudconfig.RoleLocksmith: "/coreos.com/updateengine/rebootlock/*",
}

// v2OldPrefixes are the patterns clusters set up before V2Prefixes ended
// in "/*"; the auth setup grants the new one and then revokes these.
var v2OldPrefixes = map[string]string{
	cloudconfig.RoleFleet:     "/_coreos.com/fleet*",
	cloudconfig.RoleFlannel:   "/coreos.com/network*",
	cloudconfig.RoleLocksmith: "/coreos.com/updateengine/rebootlock*",
}

// v2Role is one role of parts/v2-auth.sh.
type v2Role struct{ Name, Prefix, OldPrefix string }

// v2Auth are the parameters of parts/v2-auth.sh, the auth setup's v2 part
// (curl, as root's certificate). v2 users need a password; a random one
// nobody keeps, since every client authenticates with its certificate.
type v2Auth struct {
	Curl, Endpoint string
	Roles          []v2Role
	Users          []string
}

func newV2Auth(c *cloudconfig.Cluster) v2Auth {
	a := v2Auth{Curl: "sudo curl -fsS" + c.CurlTLSArgs(cloudconfig.RoleRoot), Endpoint: c.LocalEndpoint(),
		Users: []string{cloudconfig.RoleRoot, cloudconfig.RoleRegistrar}}
	for _, r := range []string{cloudconfig.RoleFleet, cloudconfig.RoleFlannel, cloudconfig.RoleLocksmith} {
		a.Roles = append(a.Roles, v2Role{r, V2Prefixes[r], v2OldPrefixes[r]})
		a.Users = append(a.Users, r)
	}
	return a
}

// AuthSetup turns on etcd's auth once the cluster is up (run on one node
// as the root role). v3: users named after the client certificates' common
// names, the registrar's role limited to cloudconfig.RegistrarKeyPrefix,
// then auth on. v2 (which v3 auth does not govern, design §10): the same
// users, which etcd 3.5 maps from a client certificate's common name, each
// role limited to its V2Prefixes, the guest role (any request without a
// known user) stripped of every permission, then v2 auth on. Idempotent.
func AuthSetup(c *cloudconfig.Cluster) string {
	return render("auth-setup.sh", struct {
		Etcdctl            etcdctl
		RegistrarKeyPrefix string
		V2                 v2Auth
	}{etcdctlRoot(c), cloudconfig.RegistrarKeyPrefix, newV2Auth(c)})
}
