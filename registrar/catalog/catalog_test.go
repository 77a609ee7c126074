package catalog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/registrar/catalog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestWatchSnapshotsAndCompaction(t *testing.T) {
	_, cli := testenv.Etcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := "/services/web/upstream/"
	cli.Put(ctx, prefix+"web@1", "10.0.0.1:80")
	out := make(chan catalog.Snapshot, 1)
	done := make(chan error, 1)
	go func() { done <- catalog.Watch(ctx, cli, prefix, out, nil) }()
	first := <-out
	if len(first.Entries) != 1 || first.Entries["web@1"] != "10.0.0.1:80" {
		t.Fatalf("first snapshot %+v", first.Entries)
	}
	cli.Put(ctx, prefix+"web@2", "10.0.0.2:80")
	var s catalog.Snapshot
	testenv.WaitFor(t, 5*time.Second, "web@2 in a snapshot", func() bool {
		select {
		case s = <-out:
		default:
		}
		return s.Entries["web@2"] == "10.0.0.2:80"
	})
	cli.Delete(ctx, prefix+"web@1")
	testenv.WaitFor(t, 5*time.Second, "web@1 deleted", func() bool {
		select {
		case s = <-out:
		default:
		}
		_, ok := s.Entries["web@1"]
		return !ok && len(s.Entries) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch returned %v on cancel", err)
	}
}

// A watch from a compacted revision fails with ErrCompacted, which Watch
// answers by listing again.
func TestFollowReportsCompaction(t *testing.T) {
	_, cli := testenv.Etcd(t)
	ctx := context.Background()
	prefix := "/p/"
	var last int64
	for i := 0; i < 5; i++ {
		r, _ := cli.Put(ctx, prefix+"k", "v")
		last = r.Header.Revision
	}
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := catalog.Follow(fctx, cli, prefix, catalog.Snapshot{Rev: 1, Entries: map[string]string{}, Leases: map[string]int64{}, Created: map[string]int64{}}, make(chan catalog.Snapshot, 1))
	if !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("follow from a compacted revision: %v", err)
	}
}
