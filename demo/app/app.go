// Package app is the tiny web app the demo and the tests run as "someapp":
// GET / answers with its instance name, GET /healthz with its health, and
// POST /admin/health?ok=false|true flips that health so tests can exercise
// health gating. deployctl runs it as its hidden `demo-app` subcommand (the
// demo needs no other binary); cmd/demoapp is the same app on its own.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Subcommand is the argument that selects the app in deployctl; Main
// accepts it in first place from any binary.
const Subcommand = "demo-app"

// Main parses the app's flags (-listen, default :3000 or :$PORT; -instance,
// default $INSTANCE, then the hostname) and serves until ctx ends.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == Subcommand {
		args = args[1:]
	}
	def := ":3000"
	if p := os.Getenv("PORT"); p != "" {
		def = ":" + p
	}
	fs := flag.NewFlagSet(Subcommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", def, "address to listen on")
	name := fs.String("instance", os.Getenv("INSTANCE"), "instance name to answer with (default $INSTANCE, then the hostname)")
	readyAfter := fs.Duration("ready-after", envDuration("READY_AFTER"), "answer /healthz with 503 for this long after start, as a slow-starting app does (default $READY_AFTER)")
	healthy := fs.Bool("healthy", os.Getenv("HEALTHY") != "false", "false: /healthz never passes, a broken version (default $HEALTHY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	return ServeWith(ctx, *listen, *name, Readiness{After: *readyAfter, Never: !*healthy}, slog.New(slog.NewTextHandler(stderr, nil)))
}

func envDuration(k string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(k))
	return d
}

// Readiness is when /healthz starts passing.
type Readiness struct {
	// After start, /healthz fails for this long.
	After time.Duration
	// Never: /healthz never passes.
	Never bool
}

// Serve answers as instance name on listen until ctx ends, healthy from
// the start.
func Serve(ctx context.Context, listen, name string, log *slog.Logger) error {
	return ServeWith(ctx, listen, name, Readiness{}, log)
}

// ServeWith is Serve with a readiness: a slow-starting or broken app.
func ServeWith(ctx context.Context, listen, name string, ready Readiness, log *slog.Logger) error {
	var healthy atomic.Bool
	healthy.Store(!ready.Never && ready.After <= 0)
	if !ready.Never && ready.After > 0 {
		t := time.AfterFunc(ready.After, func() { healthy.Store(true) })
		defer t.Stop()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", name)
		fmt.Fprintln(w, name)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /admin/health", func(w http.ResponseWriter, r *http.Request) {
		ok, err := strconv.ParseBool(r.URL.Query().Get("ok"))
		if err != nil {
			http.Error(w, "query parameter ok must be true or false", http.StatusBadRequest)
			return
		}
		healthy.Store(ok)
		fmt.Fprintln(w, "health set to", ok)
	})
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("demo app listening", "addr", listen, "instance", name)
	err := srv.ListenAndServe()
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return err
}
