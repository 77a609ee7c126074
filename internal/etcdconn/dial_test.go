package etcdconn_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/testenv"
)

// With Dial set, the client's connections are made by it, to the
// endpoint's host:port as given: here an address (TEST-NET-1) nothing
// answers at, which Dial sends to the member member, as deployctl's SSH
// tunnel reaches a node's private address.
func TestDialMakesTheConnections(t *testing.T) {
	srv, _ := testenv.Etcd(t)
	member := srv.Endpoint()[len("http://"):]
	var mu sync.Mutex
	var asked []string
	c := etcdconn.Config{Endpoints: []string{"http://192.0.2.1:2379"}, DialTimeout: 5 * time.Second,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			mu.Lock()
			asked = append(asked, addr)
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, "tcp", member)
		}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatalf("put through Dial: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) == 0 || asked[0] != "192.0.2.1:2379" {
		t.Fatalf("Dial asked for %v, want 192.0.2.1:2379", asked)
	}
}
