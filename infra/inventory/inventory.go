// Package inventory lists a deployctl cluster's droplets through the
// DigitalOcean API (godo), by the tag infra gives every node, and reads the
// endpoints `pulumi up` exported.
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/digitalocean/godo"
)

// Node is one droplet.
type Node struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Region    string    `json:"region"`
	Size      string    `json:"size"`
	PublicIP  string    `json:"publicIp"`
	PrivateIP string    `json:"privateIp"`
	Tags      []string  `json:"tags"`
	Created   time.Time `json:"created,omitempty"`
}

// Client lists droplets.
type Client struct{ do *godo.Client }

// TokenEnv is where the DigitalOcean token is read from.
const TokenEnv = "DIGITALOCEAN_TOKEN"

// New returns a client with the token from $DIGITALOCEAN_TOKEN; baseURL
// (for tests) may be empty.
func New(baseURL string, hc *http.Client) (*Client, error) {
	token := os.Getenv(TokenEnv)
	if token == "" {
		return nil, fmt.Errorf("$%s is not set: create a token at cloud.digitalocean.com/account/api/tokens and export it", TokenEnv)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	opts := []godo.ClientOpt{godo.SetUserAgent("deployctl")}
	if baseURL != "" {
		opts = append(opts, godo.SetBaseURL(baseURL))
	}
	c, err := godo.New(oauthClient(hc, token), opts...)
	if err != nil {
		return nil, fmt.Errorf("digitalocean client: %w", err)
	}
	return &Client{do: c}, nil
}

// oauthClient adds the bearer token without logging it anywhere.
func oauthClient(hc *http.Client, token string) *http.Client {
	c := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = bearer{base: base, token: token}
	return &c
}

type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// maxPages bounds paging against a misbehaving API.
const maxPages = 1000

// ListByTag returns every droplet carrying tag, following pages until the
// API says the last page is reached.
func (c *Client) ListByTag(ctx context.Context, tag string) ([]Node, error) {
	var nodes []Node
	opt := &godo.ListOptions{Page: 1, PerPage: 200}
	for i := 0; i < maxPages; i++ {
		ds, resp, err := c.do.Droplets.ListByTag(ctx, tag, opt)
		if err != nil {
			var er *godo.ErrorResponse
			if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusTooManyRequests {
				reset := "later"
				if resp != nil {
					reset = resp.Rate.Reset.Format(time.RFC3339)
				}
				return nil, fmt.Errorf("digitalocean rate limit reached (resets %s): %w", reset, err)
			}
			return nil, fmt.Errorf("list droplets tagged %s: %w", tag, err)
		}
		for i := range ds {
			d := &ds[i]
			pub, _ := d.PublicIPv4()
			priv, _ := d.PrivateIPv4()
			n := Node{ID: d.ID, Name: d.Name, Status: d.Status, Size: d.SizeSlug, PublicIP: pub, PrivateIP: priv, Tags: d.Tags}
			if d.Region != nil {
				n.Region = d.Region.Slug
			}
			if t, err := time.Parse(time.RFC3339, d.Created); err == nil {
				n.Created = t
			}
			nodes = append(nodes, n)
		}
		if resp == nil || resp.Links == nil || resp.Links.IsLastPage() {
			sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
			return nodes, nil
		}
		page, err := resp.Links.CurrentPage()
		if err != nil {
			return nil, fmt.Errorf("list droplets tagged %s: bad paging links: %w", tag, err)
		}
		opt.Page = page + 1
	}
	return nil, fmt.Errorf("list droplets tagged %s: more than %d pages", tag, maxPages)
}

// Endpoints are the values `deployctl units submit --tunnel` and the
// registrar need, from the stack's outputs.
type Endpoints struct {
	ClusterTag    string   `json:"clusterTag"`
	FleetEndpoint string   `json:"fleetEndpoint"`
	FleetTunnel   string   `json:"fleetTunnel"`
	EtcdEndpoints []string `json:"etcdEndpoints"`
	LBAddresses   []string `json:"lbAddresses"`
	NodePublicIPs []string `json:"nodePublicIps"`
	// KnownHosts are the nodes' SSH host keys as known_hosts lines.
	KnownHosts []string `json:"knownHosts,omitempty"`
	// The operator's etcd client certificate (etcd's root user) and the
	// cluster CA, when etcd runs with TLS. The key is a secret output:
	// `pulumi stack output --json --show-secrets` shows it.
	EtcdCACertPem     string `json:"etcdCaCertPem,omitempty"`
	EtcdClientCertPem string `json:"etcdClientCertPem,omitempty"`
	EtcdClientKeyPem  string `json:"etcdClientKeyPem,omitempty"`
}

// ParseOutputs reads `pulumi stack output --json`.
func ParseOutputs(b []byte) (*Endpoints, error) {
	var e Endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("stack outputs are not the JSON of `pulumi stack output --json`: %w", err)
	}
	if e.FleetTunnel == "" || e.FleetEndpoint == "" {
		return nil, errors.New("stack outputs lack fleetTunnel/fleetEndpoint: was this stack created by deployctl's Pulumi program?")
	}
	return &e, nil
}
