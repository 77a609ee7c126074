// Command demoapp is the tiny web app the demo and tests run as "someapp":
// GET / answers with its instance name, GET /healthz with its health, and
// POST /admin/health?ok=false|true flips that health so tests can exercise
// health gating. It listens on :3000 unless PORT or -listen says otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	def := ":3000"
	if p := os.Getenv("PORT"); p != "" {
		def = ":" + p
	}
	listen := flag.String("listen", def, "address to listen on")
	name := flag.String("instance", os.Getenv("INSTANCE"), "instance name to answer with (default $INSTANCE, then the hostname)")
	flag.Parse()
	if *name == "" {
		*name, _ = os.Hostname()
	}
	var healthy atomic.Bool
	healthy.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", *name)
		fmt.Fprintln(w, *name)
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
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	slog.Info("demoapp listening", "addr", *listen, "instance", *name)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error("demoapp", "err", err)
		os.Exit(1)
	}
}
