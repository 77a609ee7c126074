package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/cmd/deployctl/cli"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/catalog"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestServicesLs(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	ctx := context.Background()
	lease, err := etcd.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-90 * time.Second).UTC().Format(time.RFC3339Nano)
	etcd.Put(ctx, "/services/someapp/upstream/someapp@1", "10.1.0.2:3000", clientv3.WithLease(lease.ID))
	etcd.Put(ctx, "/services/someapp/meta/someapp@1", `{"addr":"10.1.0.2:3000","since":"`+since+`"}`, clientv3.WithLease(lease.ID))
	etcd.Put(ctx, "/services/other/upstream/other@1", "10.1.0.3:80")
	code, out, errs := run(t, "services", "ls", "--etcd-endpoints", srv.Endpoint(), "-o", "json")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	var ins []catalog.Instance
	if err := json.Unmarshal([]byte(out), &ins); err != nil || len(ins) != 2 {
		t.Fatalf("%v %s", err, out)
	}
	a := ins[1]
	if a.Service != "someapp" || a.Instance != "someapp@1" || a.Address != "10.1.0.2:3000" || a.TTLLeft < 25 || a.TTLLeft > 30 || a.Age < 89 {
		t.Fatalf("instance %+v", a)
	}
	if ins[0].TTLLeft != -1 {
		t.Fatalf("a key without lease: %+v", ins[0])
	}
	code, out, _ = run(t, "services", "ls", "someapp", "--etcd-endpoints", srv.Endpoint())
	if code != 0 || !strings.Contains(out, "someapp@1") || strings.Contains(out, "other@1") || !strings.Contains(out, "1m3") {
		t.Fatalf("table: %q", out)
	}
	code, _, errs = run(t, "services", "ls", "--etcd-endpoints", "localhost")
	if code != 2 || !strings.Contains(errs, "--etcd-endpoints") {
		t.Fatalf("bad endpoint: %d %s", code, errs)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServicesWatch(t *testing.T) {
	srv, etcd := testenv.Etcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuf{}
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"services", "watch", "--etcd-endpoints", srv.Endpoint(), "-o", "json"}, out, &errb)
	}()
	time.Sleep(300 * time.Millisecond)
	// The watch keeps the latest state for a slow reader, so each change
	// is made once the previous one was printed.
	steps := []func(){
		func() { etcd.Put(context.Background(), "/services/web/upstream/web@1", "10.1.0.9:80") },
		func() { etcd.Put(context.Background(), "/services/web/upstream/web@1", "10.1.0.10:80") },
		func() { etcd.Delete(context.Background(), "/services/web/upstream/web@1") },
	}
	for i, step := range steps {
		step()
		testenv.WaitFor(t, 5*time.Second, "change streamed", func() bool { return strings.Count(out.String(), "\n") >= i+1 })
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var ops []string
	for _, l := range lines {
		var c cli.Change
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, c.Op+" "+c.Service+"/"+c.Instance+" "+c.Address)
	}
	want := "added web/web@1 10.1.0.9:80,changed web/web@1 10.1.0.10:80,removed web/web@1 "
	if strings.Join(ops, ",") != want {
		t.Fatalf("changes %q, want %q", strings.Join(ops, ","), want)
	}
}
