package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the Engine API version this client is written against.
// An older engine (Docker 20.10 speaks 1.41) is spoken to in its own
// version, as the Docker CLI negotiates; every call used exists since 1.41.
// Docker 29 refuses versions below 1.44.
const APIVersion = "1.44"

// MinAPIVersion is the oldest engine API the client works with.
const MinAPIVersion = "1.41"

// apiVersion negotiates once: the engine's /_ping names its highest API
// version; the client uses the lower of that and APIVersion. A failed
// negotiation is kept by no one: the next call asks again. Concurrent
// callers negotiate one at a time under verMu, each bounded by its own ctx
// (and the client's timeouts), so no caller can wait forever on another.
func (c *Client) apiVersion(ctx context.Context) (string, error) {
	c.verMu.Lock()
	defer c.verMu.Unlock()
	if c.version != "" {
		return c.version, nil
	}
	v, err := c.negotiate(ctx)
	if err != nil {
		return "", err
	}
	c.version = v
	return v, nil
}

// pingTimeout bounds one negotiation, so that callers queued behind it on
// verMu wait at most that long for their turn.
const pingTimeout = 10 * time.Second

func (c *Client) negotiate(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("docker ping: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("docker ping: %w", &APIError{Status: resp.StatusCode, Message: resp.Status})
	}
	server := resp.Header.Get("Api-Version")
	if server == "" || !older(server, APIVersion) {
		return APIVersion, nil
	}
	if older(server, MinAPIVersion) {
		return "", fmt.Errorf("docker engine speaks API %s; deployctl needs %s or newer (Docker 20.10+)", server, MinAPIVersion)
	}
	return server, nil
}

// older reports whether API version a is below b ("1.41" < "1.44").
func older(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	if len(pa) != 2 || len(pb) != 2 {
		return a < b
	}
	ma, _ := strconv.Atoi(pa[0])
	mb, _ := strconv.Atoi(pb[0])
	if ma != mb {
		return ma < mb
	}
	na, _ := strconv.Atoi(pa[1])
	nb, _ := strconv.Atoi(pb[1])
	return na < nb
}

// tlsConfig is the Docker CLI's TLS for DOCKER_TLS_VERIFY: ca.pem verifies
// the engine, cert.pem and key.pem identify the client, all in dir
// (default ~/.docker).
func tlsConfig(dir string) (*tls.Config, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, errors.New("DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor a home directory is")
		}
		dir = filepath.Join(home, ".docker")
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_CERT_PATH: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("DOCKER_CERT_PATH: %s holds no PEM certificate", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_CERT_PATH: client certificate: %w", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
