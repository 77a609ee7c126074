package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/deployctl/deployctl/infra"
	"github.com/deployctl/deployctl/infra/inventory"
	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// Pulumi is how a local cluster runs the project's Pulumi program.
type Pulumi struct {
	// CLI is the pulumi binary (empty: pulumi on PATH).
	CLI string `json:"cli,omitempty"`
	// Plugins holds the providers the program's bindings name, gzip'ed
	// with a SHA256SUMS of the unpacked files (../shared/tools/
	// pulumi-linux-amd64); empty lets the engine download them, as it does
	// for any stack.
	Plugins string `json:"plugins,omitempty"`
}

// providers are the plugins infra's bindings register, with their versions.
var providers = []struct{ name, version string }{
	{"tls", infra.TLSVersion}, {"command", infra.CommandVersion}, {"digitalocean", infra.DigitalOceanVersion},
}

// program is the cluster's Pulumi stack: infra.Program, run inline through
// the Automation API against the cluster's DigitalOcean stand-in, with a
// file backend and PULUMI_HOME in the cluster's directory and its secrets
// under a passphrase kept in a 0600 file there.
type program struct {
	stack auto.Stack
	env   []string // the CLI's environment, for what auto would run with a secret in argv
	work  string
	cli   string
}

func (s *State) pulumiDir(sub ...string) string {
	return filepath.Join(append([]string{s.Dir, "pulumi"}, sub...)...)
}

// openProgram selects (or creates) the cluster's stack.
func (s *State) openProgram(ctx context.Context) (*program, error) {
	for _, d := range []string{"backend", "home", "work", "cli/bin"} {
		if err := os.MkdirAll(s.pulumiDir(d), 0o700); err != nil {
			return nil, err
		}
	}
	cli, err := s.pulumiCLI()
	if err != nil {
		return nil, err
	}
	pass, err := s.passphraseFile()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"PATH":                          s.pulumiDir("cli", "bin") + ":" + os.Getenv("PATH"),
		"PULUMI_HOME":                   s.pulumiDir("home"),
		"PULUMI_BACKEND_URL":            "file://" + s.pulumiDir("backend"),
		"PULUMI_CONFIG_PASSPHRASE_FILE": pass,
		"PULUMI_SKIP_UPDATE_CHECK":      "true",
		"PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
		"NO_COLOR": "1",
	}
	if s.Pulumi.Plugins != "" {
		env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
	}
	p := &program{work: s.pulumiDir("work"), cli: cli, env: os.Environ()}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	if err := s.installPlugins(ctx, p); err != nil {
		return nil, err
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: s.pulumiDir("cli"), SkipVersionCheck: true})
	if err != nil {
		return nil, fmt.Errorf("the Pulumi CLI %s: %w", cli, err)
	}
	p.stack, err = auto.UpsertStackInlineSource(ctx, s.Name, infra.Namespace, infra.Program, auto.Pulumi(cmd), auto.EnvVars(env),
		auto.WorkDir(p.work), auto.PulumiHome(s.pulumiDir("home")), auto.SecretsProvider("passphrase"))
	if err != nil {
		return nil, fmt.Errorf("pulumi stack %s: %w", s.Name, err)
	}
	return p, nil
}

// pulumiCLI links the CLI where auto looks for it (ROOT/bin/pulumi), with
// the Go language host beside it when the plugins directory has one.
func (s *State) pulumiCLI() (string, error) {
	cli := s.Pulumi.CLI
	if cli == "" {
		var err error
		if cli, err = exec.LookPath("pulumi"); err != nil {
			return "", errors.New("the Pulumi CLI is not on PATH: give --pulumi PATH (make e2e builds one: scripts/pulumi-cli.sh) or install pulumi")
		}
	}
	cli, err := filepath.Abs(cli)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(cli); err != nil {
		return "", fmt.Errorf("--pulumi: %w", err)
	}
	link := s.pulumiDir("cli", "bin", "pulumi")
	os.Remove(link)
	return cli, os.Symlink(cli, link)
}

// passphraseFile is the stack's secrets passphrase, made once (0600).
func (s *State) passphraseFile() (string, error) {
	p := s.pulumiDir("passphrase")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return p, atomicfile.WriteFile(p, []byte(hex.EncodeToString(b)), 0o600)
}

// installPlugins installs the providers from --plugins into the stack's
// PULUMI_HOME, each checked against its SHA-256, as `pulumi plugin
// install -f` does; installed ones are left as they are.
func (s *State) installPlugins(ctx context.Context, p *program) error {
	dir, cache := s.Pulumi.Plugins, s.pulumiDir("plugins")
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "pulumi-language-go.gz")); err == nil {
		f, err := unpackChecked(dir, cache, "pulumi-language-go")
		if err != nil {
			return fmt.Errorf("--plugins: %w", err)
		}
		link := s.pulumiDir("cli", "bin", "pulumi-language-go")
		os.Remove(link)
		if err := os.Symlink(f["pulumi-language-go"], link); err != nil {
			return err
		}
	}
	for _, pr := range providers {
		if _, err := os.Stat(s.pulumiDir("home", "plugins", "resource-"+pr.name+"-v"+pr.version)); err == nil {
			continue
		}
		f, err := unpackChecked(dir, cache, "pulumi-resource-"+pr.name)
		if err != nil {
			return fmt.Errorf("--plugins: %w", err)
		}
		if out, err := p.run(ctx, nil, "plugin", "install", "resource", pr.name, pr.version, "-f", f["pulumi-resource-"+pr.name]); err != nil {
			return fmt.Errorf("pulumi plugin install %s %s: %w: %s", pr.name, pr.version, err, out)
		}
	}
	return nil
}

// run runs the CLI in the stack's work directory with stdin.
func (p *program) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, p.cli, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = p.work, p.env, stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// setSecret stores a secret config value, given on the CLI's stdin: auto's
// SetConfig would put it in the command's arguments.
func (p *program) setSecret(ctx context.Context, key, value string) error {
	if out, err := p.run(ctx, strings.NewReader(value), "config", "set", "--secret", "--stack", p.stack.Name(), key); err != nil {
		return fmt.Errorf("pulumi config set --secret %s: %w: %s", key, err, out)
	}
	return nil
}

// configure points the stack at the API and the cluster's parts and sets
// its size; keys the user did not choose keep Pulumi.yaml's defaults.
func (p *program) configure(ctx context.Context, s *State, cfg *Config, api *API) error {
	host := netip.MustParsePrefix(s.Subnet).Addr().Next().String() + "/32" // this machine, on the cluster network
	pub, err := os.ReadFile(s.KeyFile() + ".pub")
	if err != nil {
		return err
	}
	plain := auto.ConfigMap{
		"digitalocean:apiEndpoint": {Value: api.URL},
		"deployctl:fleetUrl":       {Value: s.FleetURL},
		"deployctl:fleetSha256":    {Value: s.FleetSHA256},
		"deployctl:nodeCount":      {Value: strconv.Itoa(cfg.Nodes)},
		"deployctl:lbCount":        {Value: strconv.Itoa(cfg.Edge)},
		"deployctl:etcdTls":        {Value: strconv.FormatBool(s.TLS)},
	}
	if !s.TLS {
		plain["deployctl:allowPlaintextEtcd"] = auto.ConfigValue{Value: "true"}
	}
	if cfg.Parts.Registrar != "" {
		plain["deployctl:registrarPath"] = auto.ConfigValue{Value: cfg.Parts.Registrar}
	}
	if err := p.stack.SetAllConfig(ctx, plain); err != nil {
		return fmt.Errorf("pulumi config: %w", err)
	}
	paths := auto.ConfigMap{
		"deployctl:allowedSshCidrs[0]": {Value: host},
		"deployctl:etcdClientCidrs[0]": {Value: host},
		"deployctl:sshPublicKeys[0]":   {Value: strings.TrimSpace(string(pub))},
	}
	if err := p.stack.SetAllConfigWithOptions(ctx, paths, &auto.ConfigOptions{Path: true}); err != nil {
		return fmt.Errorf("pulumi config: %w", err)
	}
	token, err := api.token()
	if err != nil {
		return err
	}
	key, err := os.ReadFile(s.KeyFile())
	if err != nil {
		return err
	}
	if err := p.setSecret(ctx, "digitalocean:token", token); err != nil {
		return err
	}
	return p.setSecret(ctx, "deployctl:sshPrivateKey", string(key))
}

// pkiGeneration is the stack's pkiGeneration (1 when unset).
func (p *program) pkiGeneration(ctx context.Context) (int, error) {
	v, err := p.stack.GetConfig(ctx, "deployctl:pkiGeneration")
	if err != nil || v.Value == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil {
		return 0, fmt.Errorf("the stack's deployctl:pkiGeneration %q: %w", v.Value, err)
	}
	return n, nil
}

// up runs pulumi up and returns the stack's outputs.
func (p *program) up(ctx context.Context, progress io.Writer) (auto.OutputMap, error) {
	if progress == nil {
		progress = io.Discard
	}
	res, err := p.stack.Up(ctx, optup.ProgressStreams(progress), optup.ErrorProgressStreams(progress), optup.SuppressOutputs())
	if err != nil {
		return nil, fmt.Errorf("pulumi up of stack %s: %w", p.stack.Name(), err)
	}
	return res.Outputs, nil
}

// destroy runs pulumi destroy and removes the stack.
func (p *program) destroy(ctx context.Context, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if _, err := p.stack.Destroy(ctx, optdestroy.ProgressStreams(progress), optdestroy.ErrorProgressStreams(progress)); err != nil {
		return fmt.Errorf("pulumi destroy of stack %s: %w", p.stack.Name(), err)
	}
	return nil
}

// endpoints reads the outputs as `pulumi stack output --json
// --show-secrets` gives them.
func endpoints(out auto.OutputMap) (*inventory.Endpoints, []string, error) {
	plain := map[string]any{}
	for k, v := range out {
		plain[k] = v.Value
	}
	b, err := json.Marshal(plain)
	if err != nil {
		return nil, nil, err
	}
	ep, err := inventory.ParseOutputs(b)
	if err != nil {
		return nil, nil, err
	}
	var names struct {
		NodeNames []string `json:"nodeNames"`
	}
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, nil, fmt.Errorf("stack output nodeNames: %w", err)
	}
	return ep, names.NodeNames, nil
}
