// Package cli is the command tree of the registrar binary, which
// fleet units run next to each app instance (`registrar announce`) and next
// to each nginx load balancer (`registrar nginx`). It is kept apart from
// deployctl's tree so the registrar links neither the embedded etcd server
// nor Pulumi.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags.
var Version = "dev"

type globals struct {
	logFormat string
	logLevel  string
	stderr    io.Writer
}

// New builds the registrar command tree.
func New(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stderr: stderr}
	root := &cobra.Command{
		Use:   "registrar",
		Short: "Service registration and nginx discovery on etcd",
		Long: `registrar keeps a service's instances registered in etcd and keeps nginx
following them.

  registrar announce  runs beside one app instance (the fleet discovery sidekick)
                      and keeps /services/<service>/upstream/<instance> = IP:port
                      alive under an etcd lease while the instance runs and is healthy.
  registrar nginx     runs beside nginx, watches that prefix and rewrites the
                      upstream, validates it with nginx -t and reloads nginx.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitcode.Usage(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	root.AddCommand(newAnnounceCmd(g), newNginxCmd(g, stdout))
	return root
}

// Main runs the tree with args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := New(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "registrar:", err)
	}
	return exitcode.Of(err)
}

func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, exitcode.Usage(fmt.Errorf("--log-level: %q is not debug, info, warn or error", g.logLevel))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, exitcode.Usage(fmt.Errorf("--log-format: %q is not text or json", g.logFormat))
}

// newRegistry returns a registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves /metrics on addr until ctx ends. The listener is
// opened before it returns so a taken port is reported at once.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

func checkPort(flag string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%s: port %d is out of range 1-65535", flag, p)
	}
	return nil
}

// checkServiceName keeps service names usable as etcd path segments, nginx
// upstream names and unit name prefixes.
func checkServiceName(flag, s string) error {
	if s == "" {
		return fmt.Errorf("%s is required", flag)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && strings.ContainsRune("-_.", r))
		if !ok {
			return fmt.Errorf("%s: %q may only hold letters, digits, '-', '_' and '.', starting with a letter or digit", flag, s)
		}
	}
	return nil
}

func checkPrefix(p string) error {
	if err := registry.CheckPrefix(p); err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	return nil
}

// noController is used by --dry-run, which never validates or reloads.
type noController struct{}

func (noController) Test(context.Context) error   { return nil }
func (noController) Reload(context.Context) error { return nil }
