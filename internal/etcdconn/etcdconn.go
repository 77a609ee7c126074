// Package etcdconn holds the etcd connection settings shared by the
// registrar and deployctl (endpoints, TLS, authentication), their flags,
// their validation, and the client built from them.
package etcdconn

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// DefaultEndpoint is etcd's local client URL.
const DefaultEndpoint = "http://127.0.0.1:2379"

// Config is how to reach etcd.
type Config struct {
	Endpoints   []string
	CACert      string
	Cert        string
	Key         string
	Username    string
	Password    string
	DialTimeout time.Duration
	// AutoSync, when set, is how often the client replaces its endpoints by
	// every member's client URLs (etcd's member list), starting at once:
	// a client given only its node's member keeps working while that
	// member restarts. Zero keeps the endpoints given.
	AutoSync time.Duration
	// Dial, when set, opens the client's connections (host:port) instead
	// of a direct TCP dial: deployctl reaches etcd through its SSH tunnel
	// to a node (--tunnel) this way.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// BindSyncFlag registers --etcd-auto-sync on fs with default def: for
// the long-running clients on the nodes (the registrar), not for a
// command run from outside the cluster's network, which may not reach the
// members' private addresses.
func (c *Config) BindSyncFlag(fs *pflag.FlagSet, def time.Duration) {
	fs.DurationVar(&c.AutoSync, "etcd-auto-sync", def, "how often to learn every etcd member's client URL from the cluster, so that the client survives its own node's member restarting (0: only --etcd-endpoints)")
}

// BindFlags registers --etcd-* flags on fs. The endpoint default is
// $ETCD_ENDPOINTS when set, otherwise def.
func (c *Config) BindFlags(fs *pflag.FlagSet, def string) {
	if env := os.Getenv("ETCD_ENDPOINTS"); env != "" {
		def = env
	}
	fs.StringSliceVar(&c.Endpoints, "etcd-endpoints", []string{def}, "etcd client URLs, comma-separated (env ETCD_ENDPOINTS)")
	fs.StringVar(&c.CACert, "etcd-cacert", "", "CA bundle to verify etcd's server certificate")
	fs.StringVar(&c.Cert, "etcd-cert", "", "client certificate for etcd (with --etcd-key)")
	fs.StringVar(&c.Key, "etcd-key", "", "client key for etcd (with --etcd-cert)")
	fs.StringVar(&c.Username, "etcd-user", "", "etcd user name (password from --etcd-password or $ETCD_PASSWORD)")
	fs.StringVar(&c.Password, "etcd-password", "", "etcd password (prefer $ETCD_PASSWORD, which stays out of ps)")
	fs.DurationVar(&c.DialTimeout, "etcd-dial-timeout", 5*time.Second, "how long to wait for an etcd connection")
}

// Validate checks the settings and names the flag at fault.
func (c *Config) Validate() error {
	if c.Password == "" {
		c.Password = os.Getenv("ETCD_PASSWORD")
	}
	if len(c.Endpoints) == 0 {
		return fmt.Errorf("--etcd-endpoints: at least one URL is needed, e.g. %s", DefaultEndpoint)
	}
	tlsWanted := c.CACert != "" || c.Cert != ""
	for _, e := range c.Endpoints {
		if err := checkEndpoint(e); err != nil {
			return fmt.Errorf("--etcd-endpoints: %w", err)
		}
		if strings.HasPrefix(e, "https://") {
			tlsWanted = true
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return fmt.Errorf("--etcd-cert and --etcd-key go together: give both or neither")
	}
	for flag, path := range map[string]string{"--etcd-cacert": c.CACert, "--etcd-cert": c.Cert, "--etcd-key": c.Key} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	if tlsWanted {
		for _, e := range c.Endpoints {
			if strings.HasPrefix(e, "http://") {
				return fmt.Errorf("--etcd-endpoints: %q is plain http while TLS settings are given; use https://", e)
			}
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("--etcd-user needs a password (--etcd-password or $ETCD_PASSWORD), and a password needs --etcd-user")
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("--etcd-dial-timeout must be positive, got %s", c.DialTimeout)
	}
	return nil
}

func checkEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q must start with http://, https://, unix:// or unixs://, e.g. http://127.0.0.1:2379", e)
	}
	switch u.Scheme {
	case "http", "https":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("%q needs host and port, like http://127.0.0.1:2379", e)
		}
	case "unix", "unixs":
		if u.Host == "" && u.Path == "" {
			return fmt.Errorf("%q needs a socket path", e)
		}
	default:
		return fmt.Errorf("%q must start with http://, https://, unix:// or unixs://", e)
	}
	return nil
}

// Client connects to etcd. It does not wait for the cluster: the first
// request does.
func (c *Config) Client() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:            c.Endpoints,
		DialTimeout:          c.DialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Username:             c.Username,
		Password:             c.Password,
		Logger:               zap.NewNop(),
		AutoSyncInterval:     c.AutoSync,
	}
	if c.Dial != nil {
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(c.Dial))
	}
	if c.CACert != "" || c.Cert != "" || anyHTTPS(c.Endpoints) {
		info := transport.TLSInfo{TrustedCAFile: c.CACert, CertFile: c.Cert, KeyFile: c.Key}
		tc, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd TLS settings: %w", err)
		}
		if c.CACert != "" {
			followCAFile(tc, c.CACert, endpointHosts(c.Endpoints))
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	if c.AutoSync > 0 {
		// The client's own loop syncs first after one interval: once now,
		// in the background (the first request must not wait for it).
		go func() {
			ctx, cancel := context.WithTimeout(cli.Ctx(), c.DialTimeout+5*time.Second)
			defer cancel()
			_ = cli.Sync(ctx) // the periodic sync retries
		}()
	}
	return cli, nil
}

func anyHTTPS(eps []string) bool {
	for _, e := range eps {
		if strings.HasPrefix(e, "https://") || strings.HasPrefix(e, "unixs://") {
			return true
		}
	}
	return false
}
