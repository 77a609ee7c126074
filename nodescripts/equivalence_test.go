package nodescripts_test

import (
	"fmt"
	"path/filepath"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/harness/testenv"
)

// oldScripts renders scripts' inputs with the Go-string code in package
// cloudconfig that the embedded files replace.
func oldScripts(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{
		"member-add":            plainCluster.MemberAddScript("core-4", "10.0.0.4"),
		"member-remove":         plainCluster.MemberRemoveScript("core-4", "10.0.0.4"),
		"member-add-tls":        tlsCluster.MemberAddScript("core-4", "10.0.0.4"),
		"auth-setup":            tlsCluster.AuthSetupScript(),
		"node-leave":            cloudconfig.NodeLeaveScript,
		"flannel-serves-docker": cloudconfig.FlannelServesDocker,
		"registrar-install-1":   cloudconfig.RegistrarInstallScript(goldenSHA, cloudconfig.RegistrarStagedPath(goldenSHA), "/opt/bin/registrar"),
		"registrar-install-2":   cloudconfig.RegistrarInstallScript(goldenSHA2, cloudconfig.RegistrarStagedPath(goldenSHA2), "/opt/bin/registrar-next"),
		"with-root-echo":        cloudconfig.WithRoot("echo ran\n"),
	}
	full := goldenFiles(t)
	some := goldenFiles(t, cloudconfig.CAFile(), cloudconfig.ServerCertFile(), cloudconfig.ServerKeyFile())
	for name, c := range clusters() {
		for i, m := range members {
			for _, state := range []string{"new", "existing"} {
				out[fmt.Sprintf("bootstrap-%s-%d-%s", name, len(m), state)] = c.BootstrapScript(c.InitialCluster(m), state)
			}
			j := joiners[i]
			out[fmt.Sprintf("member-add-%s-%s", name, j[0])] = c.MemberAddScript(j[0], j[1])
			out[fmt.Sprintf("member-remove-%s-%s", name, j[0])] = c.MemberRemoveScript(j[0], j[1])
			out[fmt.Sprintf("member-add-as-root-%s-%s", name, j[0])] = cloudconfig.WithRoot(c.MemberAddScript(j[0], j[1]))
		}
		out["auth-setup-as-root-"+name] = cloudconfig.WithRoot(c.AuthSetupScript())
		out["rotate-trust-"+name] = c.RotateTrustScript(goldenCA)
		out["rotate-trust-2-"+name] = c.RotateTrustScript(goldenCA2)
		out["rotate-reissue-"+name] = c.RotateReissueScript(full)
		out["rotate-reissue-server-"+name] = c.RotateReissueScript(some)
		out["rotate-drop-"+name] = c.RotateDropScript(goldenCA)
		out["rotate-drop-2-"+name] = c.RotateDropScript(goldenCA2)
	}
	out["auth-setup-plain"] = plainCluster.AuthSetupScript()
	out["tls-install"] = cloudconfig.TLSInstallScript(full)
	out["tls-install-server"] = cloudconfig.TLSInstallScript(some)
	out["tls-first-install"] = cloudconfig.TLSFirstInstallScript(full)
	out["tls-first-install-server"] = cloudconfig.TLSFirstInstallScript(some)
	return out
}

// TestSameAsTheGoStrings: every script renders byte for byte as the
// Go-string code did, for every golden input.
func TestSameAsTheGoStrings(t *testing.T) {
	old := oldScripts(t)
	if *update {
		// The golden files come from the old code.
		for name, text := range old {
			testenv.Golden(t, filepath.Join("testdata", name+".sh"), []byte(text), true)
		}
	}
	news := scripts(t)
	if len(news) != len(old) {
		t.Errorf("%d new renderings, %d old", len(news), len(old))
	}
	for _, s := range news {
		want, ok := old[s.Name]
		if !ok {
			t.Errorf("%s: no old rendering", s.Name)
			continue
		}
		if s.Text != want {
			t.Errorf("%s differs from the Go-string code:\n--- old\n%s\n--- new\n%s", s.Name, want, s.Text)
		}
	}
}
