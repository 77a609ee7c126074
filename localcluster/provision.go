package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// session serves the cluster's DigitalOcean stand-in at its address and
// opens the cluster's stack, for one Pulumi operation; end stops the
// stand-in.
func (s *State) session(ctx context.Context) (api *API, p *program, end func(), err error) {
	listen := s.APIAddr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if api, err = s.newAPI(ctx, listen); err != nil {
		return nil, nil, nil, err
	}
	if s.APIAddr == "" {
		s.APIAddr = api.ln.Addr().String()
		if err := s.save(); err != nil {
			api.ln.Close()
			return nil, nil, nil, err
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := api.Serve(sctx); err != nil {
			slog.Warn("the DigitalOcean stand-in stopped serving", "cluster", s.Name, "err", err)
		}
	}()
	end = func() { cancel(); <-done }
	if p, err = s.openProgram(ctx); err != nil {
		end()
		return nil, nil, nil, err
	}
	return api, p, end, nil
}

// apply runs pulumi up of cfg's size against the cluster's stand-in
// (change, when given, alters the stack's config first), records the
// nodes and operator files the stack's outputs name, and returns once
// fleet lists every node.
func (s *State) apply(ctx context.Context, cfg *Config, change func(context.Context, *program) error) error {
	api, p, end, err := s.session(ctx)
	if err != nil {
		return err
	}
	defer end()
	if err := p.configure(ctx, s, cfg, api); err != nil {
		return err
	}
	if change != nil {
		if err := change(ctx, p); err != nil {
			return err
		}
	}
	gen, err := p.pkiGeneration(ctx)
	if err != nil {
		return err
	}
	cfg.say("pulumi up: %d nodes (%d edge), etcd TLS %v, PKI generation %d (stack %s in %s)", cfg.Nodes, cfg.Edge, s.TLS, gen, s.Name, s.pulumiDir())
	out, err := p.up(ctx, cfg.Progress)
	if err != nil {
		return err
	}
	if err := s.adopt(ctx, out); err != nil {
		return err
	}
	s.PKIGeneration = gen
	if err := s.save(); err != nil {
		return err
	}
	return s.waitServing(ctx, cfg)
}

// adopt records the nodes the stack's outputs name (their containers
// found by address), their pinned host keys and, with TLS, the operator's
// etcd files.
func (s *State) adopt(ctx context.Context, out auto.OutputMap) error {
	ep, names, err := endpoints(out)
	if err != nil {
		return err
	}
	if len(names) != len(ep.NodePublicIPs) {
		return fmt.Errorf("stack outputs name %d nodes and %d addresses", len(names), len(ep.NodePublicIPs))
	}
	byIP, err := s.containersByIP(ctx)
	if err != nil {
		return err
	}
	keys := map[string]string{}
	for _, l := range ep.KnownHosts {
		if ip, key, ok := strings.Cut(l, " "); ok {
			keys[ip] = key
		}
	}
	edge := map[string]bool{}
	for _, ip := range ep.LBAddresses {
		edge[ip] = true
	}
	nodes := make([]Node, len(names))
	for i, name := range names {
		ip := ep.NodePublicIPs[i]
		n := Node{Name: name, Container: byIP[ip], IP: ip, Role: "worker", HostKey: keys[ip]}
		if n.Container == "" || n.HostKey == "" {
			return fmt.Errorf("node %s (%s): no running droplet container or no host key in the stack's knownHosts", name, ip)
		}
		if edge[ip] {
			n.Role = "edge"
		}
		nodes[i] = n
	}
	s.Nodes = nodes
	if ep.EtcdClientKeyPem != "" {
		if err := os.MkdirAll(s.TLSDir(), 0o700); err != nil {
			return err
		}
		for _, f := range []struct{ name, pem string }{{"ca.pem", ep.EtcdCACertPem}, {"root.pem", ep.EtcdClientCertPem}, {"root-key.pem", ep.EtcdClientKeyPem}} {
			if err := atomicfile.WriteFile(filepath.Join(s.TLSDir(), f.name), []byte(f.pem), 0o600); err != nil {
				return fmt.Errorf("operator's etcd files: %w", err)
			}
		}
	}
	if err := s.save(); err != nil {
		return err
	}
	return s.WriteKnownHosts()
}

// containersByIP maps the cluster's running droplet containers by their
// address on the cluster network.
func (s *State) containersByIP(ctx context.Context) (map[string]string, error) {
	names, err := docker(ctx, "ps", "--filter", "label="+label+"="+s.Name, "--filter", "name=-droplet-", "--format", "{{.Names}}")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, c := range strings.Fields(names) {
		ip, err := docker(ctx, "inspect", "--format", `{{(index .NetworkSettings.Networks "`+s.Network+`").IPAddress}}`, c)
		if err != nil {
			return nil, err
		}
		m[strings.TrimSpace(ip)] = c
	}
	return m, nil
}

// RotateCA raises the stack's pkiGeneration and runs pulumi up: infra
// moves every node onto a new CA in passes, node by node, with no outage.
// A rotation cut off is finished by running it again (the generation is
// raised only over the last one a finished up applied).
func RotateCA(ctx context.Context, cfg Config) (*State, error) {
	s, err := Load(cfg.StateDir, cfg.Name)
	if err != nil {
		return nil, err
	}
	if !s.TLS {
		return nil, fmt.Errorf("cluster %s runs etcd without TLS: there is no CA to rotate", s.Name)
	}
	if s.APIAddr == "" || len(s.Nodes) == 0 {
		return nil, errors.New("cluster " + s.Name + " was never provisioned: deployctl cluster local up --tls first")
	}
	cfg.Nodes, cfg.Edge, cfg.TLS = len(s.Nodes), len(s.Edges()), true
	bump := func(ctx context.Context, p *program) error {
		gen, err := p.pkiGeneration(ctx)
		if err != nil {
			return err
		}
		if gen > max(s.PKIGeneration, 1) {
			cfg.say("finishing the rotation to PKI generation %d", gen)
			return nil
		}
		if err := p.stack.SetConfig(ctx, "deployctl:pkiGeneration", auto.ConfigValue{Value: fmt.Sprint(gen + 1)}); err != nil {
			return fmt.Errorf("pulumi config set pkiGeneration: %w", err)
		}
		return nil
	}
	if err := s.apply(ctx, &cfg, bump); err != nil {
		return nil, err
	}
	return s, nil
}

// destroy runs pulumi destroy of the cluster's stack against its stand-in.
func (s *State) destroy(ctx context.Context, progress io.Writer) error {
	_, p, end, err := s.session(ctx)
	if err != nil {
		return err
	}
	defer end()
	return p.destroy(ctx, progress)
}
