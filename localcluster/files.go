package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ServeFiles serves dir over HTTPS on addr until ctx ends: the local
// cluster's stand-in for the release downloads user data makes (fleet's
// tarball from GitHub), run in a container on the cluster's network.
func ServeFiles(ctx context.Context, addr, dir, cert, key string) error {
	srv := &http.Server{Addr: addr, Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS(cert, key) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", dir, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
