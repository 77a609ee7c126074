package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/doapi"
)

// API is a served DigitalOcean stand-in whose droplets are this local
// cluster's nodes.
type API struct {
	State *State
	// URL is the API's base URL (digitalocean:apiEndpoint).
	URL string
	// TokenFile holds the API token (0600).
	TokenFile string
	srv       *doapi.Server
	ln        net.Listener
}

// PrepareAPI readies what the stand-in's droplets need (the images, the
// cluster's network, the file server that serves fleet's release) and
// listens on listen; Serve then serves until its context ends.
func PrepareAPI(ctx context.Context, cfg Config, listen string) (*API, error) {
	cfg.Nodes, cfg.Edge = max(cfg.Nodes, 1), max(cfg.Edge, 1)
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	s, err := Load(cfg.StateDir, cfg.Name)
	if err != nil {
		s = &State{Name: cfg.Name, TLS: true, Network: "deployctl-" + cfg.Name, Dir: Dir(cfg.StateDir, cfg.Name)}
	} else if len(s.Nodes) > 0 || s.APIAddr != "" {
		return nil, fmt.Errorf("cluster %s was made by deployctl cluster local up; give the API another --name, or deployctl cluster local down --name %s", cfg.Name, cfg.Name)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := s.prepare(ctx, &cfg); err != nil {
		return nil, err
	}
	return s.newAPI(ctx, listen)
}

// newAPI is the cluster's stand-in, listening on listen.
func (s *State) newAPI(ctx context.Context, listen string) (*API, error) {
	a := &API{State: s, TokenFile: filepath.Join(s.Dir, "do-token")}
	token, err := a.token()
	if err != nil {
		return nil, err
	}
	a.srv, err = doapi.New(doapi.Config{StatePath: filepath.Join(s.Dir, "digitalocean.json"), Token: token,
		Machines: NewDroplets(ctx, s), VPCRange: netip.MustParsePrefix(s.Subnet), Log: slog.Default()})
	if err != nil {
		return nil, err
	}
	if a.ln, err = net.Listen("tcp", listen); err != nil {
		return nil, fmt.Errorf("the DigitalOcean stand-in of cluster %s on %s (is another command for it running?): %w", s.Name, listen, err)
	}
	a.URL = "http://" + a.ln.Addr().String()
	return a, nil
}

// token is the API's token, made once and kept in TokenFile.
func (a *API) token() (string, error) {
	b, err := os.ReadFile(a.TokenFile)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	t, err := doapi.NewToken()
	if err != nil {
		return "", err
	}
	return t, os.WriteFile(a.TokenFile, []byte(t+"\n"), 0o600)
}

// ConfigCommands are the `pulumi config set` commands that point a stack
// at this API (the token read from its file, never on a command line).
func (a *API) ConfigCommands() []string {
	gw := netip.MustParsePrefix(a.State.Subnet).Addr().Next()
	return []string{
		"pulumi config set digitalocean:apiEndpoint " + a.URL,
		"pulumi config set --secret digitalocean:token < " + a.TokenFile,
		"pulumi config set deployctl:fleetUrl " + a.State.FleetURL,
		"pulumi config set deployctl:fleetSha256 " + a.State.FleetSHA256,
		fmt.Sprintf("pulumi config set --path 'deployctl:allowedSshCidrs[0]' %s/32", gw),
	}
}

// Serve serves the API and drives its droplets until ctx ends.
func (a *API) Serve(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	hs := &http.Server{Handler: a.srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	loop := make(chan error, 1)
	go func() { loop <- a.srv.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(a.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	stop()
	if !errors.Is(err, http.ErrServerClosed) && err != nil {
		<-loop
		return fmt.Errorf("serving the DigitalOcean stand-in: %w", err)
	}
	<-loop
	return nil
}

// Fprint writes the commands that point a stack at the API.
func (a *API) Fprint(w io.Writer) {
	fmt.Fprintf(w, "# DigitalOcean stand-in for local cluster %s at %s; point a stack at it:\n", a.State.Name, a.URL)
	for _, c := range a.ConfigCommands() {
		fmt.Fprintln(w, c)
	}
	fmt.Fprintf(w, "# for deployctl cluster status: export DIGITALOCEAN_API_URL=%s DIGITALOCEAN_TOKEN=\"$(cat %s)\"\n", a.URL, a.TokenFile)
}
