package nodescripts_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/nodescripts"
)

var update = flag.Bool("update", false, "rewrite golden files")

// script is one rendering of a node script, kept in testdata/Name.
type script struct{ Name, Text string }

// Inputs the golden files are rendered from: a plain and a TLS cluster,
// clusters of 1, 3 and 5 members, several names and IPs, every rotation
// pass and every role's files.
var (
	goldenPlain = &cloudconfig.Cluster{}
	goldenTLS   = &cloudconfig.Cluster{TLS: &cloudconfig.TLS{}}
	goldenCA    = "-----BEGIN CERTIFICATE-----\nbmV3IENB\nY2VydA==\n-----END CERTIFICATE-----\n"
	goldenCA2   = "-----BEGIN CERTIFICATE-----\nb3RoZXI=\n-----END CERTIFICATE-----"
	goldenSHA   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	goldenSHA2  = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	members     = []map[string]string{
		{"core-1": "10.0.0.1"},
		{"core-1": "10.0.0.1", "core-2": "10.0.0.2", "core-3": "10.0.0.3"},
		{"core-1": "10.10.1.5", "core-2": "10.10.2.6", "core-3": "10.10.3.7", "core-4": "10.10.4.8", "core-5": "10.10.5.9"},
	}
	joiners = [][2]string{{"core-4", "10.0.0.4"}, {"core-2", "10.0.0.2"}, {"core-12", "10.10.3.7"}}
)

// goldenFiles are a node's TLS files with placeholder PEMs naming each
// file, for every role's pair; only is a subset of them when not empty.
func goldenFiles(t *testing.T, only ...string) cloudconfig.NodeTLSFiles {
	t.Helper()
	pems := map[string]string{}
	for _, n := range append([]string{"ca", "server"}, cloudconfig.ClientRoles...) {
		pems[n] = "-----BEGIN CERTIFICATE-----\n" + n + "\n-----END CERTIFICATE-----\n"
		pems[n+"-key"] = "-----BEGIN EC PRIVATE KEY-----\n" + n + "\n-----END EC PRIVATE KEY-----\n"
	}
	files, err := cloudconfig.TLSFiles(pems)
	if err != nil {
		t.Fatal(err)
	}
	if len(only) > 0 {
		sub := cloudconfig.NodeTLSFiles{}
		for _, p := range only {
			sub[p] = files[p]
		}
		files = sub
	}
	return files
}

func clusters() map[string]*cloudconfig.Cluster {
	return map[string]*cloudconfig.Cluster{"plain": goldenPlain, "tls": goldenTLS}
}

// scripts renders every script for the golden inputs, with the names of
// their golden files; the first four are the files compat/etcd35 runs
// against etcd 3.5.
func scripts(t *testing.T) []script {
	t.Helper()
	out := []script{
		{"member-add", nodescripts.MemberAdd(goldenPlain, "core-4", "10.0.0.4")},
		{"member-remove", nodescripts.MemberRemove(goldenPlain, "core-4", "10.0.0.4")},
		{"member-add-tls", nodescripts.MemberAdd(goldenTLS, "core-4", "10.0.0.4")},
		{"auth-setup", nodescripts.AuthSetup(goldenTLS)},
		{"node-leave", nodescripts.NodeLeave()},
		{"flannel-serves-docker", nodescripts.FlannelServesDocker()},
		{"registrar-install-1", nodescripts.RegistrarInstall(goldenSHA, nodescripts.RegistrarStagedPath(goldenSHA), "/opt/bin/registrar")},
		{"registrar-install-2", nodescripts.RegistrarInstall(goldenSHA2, nodescripts.RegistrarStagedPath(goldenSHA2), "/opt/bin/registrar-next")},
		{"with-root-echo", nodescripts.WithRoot("echo ran\n")},
	}
	full := goldenFiles(t)
	some := goldenFiles(t, cloudconfig.CAFile(), cloudconfig.ServerCertFile(), cloudconfig.ServerKeyFile())
	for name, c := range clusters() {
		for i, m := range members {
			for _, state := range []string{"new", "existing"} {
				out = append(out, script{fmt.Sprintf("bootstrap-%s-%d-%s", name, len(m), state), nodescripts.Bootstrap(c, c.InitialCluster(m), state)})
			}
			j := joiners[i]
			out = append(out,
				script{fmt.Sprintf("member-add-%s-%s", name, j[0]), nodescripts.MemberAdd(c, j[0], j[1])},
				script{fmt.Sprintf("member-remove-%s-%s", name, j[0]), nodescripts.MemberRemove(c, j[0], j[1])},
				script{fmt.Sprintf("member-add-as-root-%s-%s", name, j[0]), nodescripts.WithRoot(nodescripts.MemberAdd(c, j[0], j[1]))})
		}
		out = append(out,
			script{"auth-setup-as-root-" + name, nodescripts.WithRoot(nodescripts.AuthSetup(c))},
			script{"rotate-trust-" + name, nodescripts.RotateTrust(c, goldenCA)},
			script{"rotate-trust-2-" + name, nodescripts.RotateTrust(c, goldenCA2)},
			script{"rotate-reissue-" + name, nodescripts.RotateReissue(c, full)},
			script{"rotate-reissue-server-" + name, nodescripts.RotateReissue(c, some)},
			script{"rotate-drop-" + name, nodescripts.RotateDrop(c, goldenCA)},
			script{"rotate-drop-2-" + name, nodescripts.RotateDrop(c, goldenCA2)})
	}
	out = append(out,
		script{"auth-setup-plain", nodescripts.AuthSetup(goldenPlain)},
		script{"tls-install", nodescripts.TLSInstall(full)},
		script{"tls-install-server", nodescripts.TLSInstall(some)},
		script{"tls-first-install", nodescripts.TLSFirstInstall(full)},
		script{"tls-first-install-server", nodescripts.TLSFirstInstall(some)})
	sort.SliceStable(out[4:], func(i, j int) bool { return out[4+i].Name < out[4+j].Name })
	return out
}

// TestGolden keeps testdata/*.sh equal to what infra and the local
// cluster run on the nodes (they were generated from the Go-string code
// these files replaced, and compat/etcd35 runs member-add.sh,
// member-remove.sh, member-add-tls.sh and auth-setup.sh against etcd 3.5).
func TestGolden(t *testing.T) {
	for _, s := range scripts(t) {
		if strings.Contains(s.Text, "PRIVATE KEY") {
			t.Errorf("%s: a key in the script's text", s.Name)
		}
		testenv.Golden(t, filepath.Join("testdata", s.Name+".sh"), []byte(s.Text), *update)
	}
}
