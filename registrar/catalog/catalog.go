// Package catalog lists and watches the instances registered under one etcd
// prefix and hands out complete snapshots. It reads the current keys, then
// watches from the next revision with WithRequireLeader; on compaction, a
// lost leader or a broken watch it lists again, so it never silently stops
// following. Every send is guarded by the context.
package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/backoff"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Snapshot is the full set of registrations at one revision.
type Snapshot struct {
	Rev int64
	// Entries maps instance name (the key below the prefix) to its raw
	// value, which may be invalid.
	Entries map[string]string
	// Leases maps instance name to its lease id (0 when none).
	Leases map[string]int64
	// Created maps instance name to the revision that created the key.
	Created map[string]int64
	// At is when the change that produced this snapshot was received.
	At time.Time
}

func (s Snapshot) clone() Snapshot {
	return Snapshot{Rev: s.Rev, Entries: maps.Clone(s.Entries), Leases: maps.Clone(s.Leases), Created: maps.Clone(s.Created), At: s.At}
}

// List reads every key under prefix.
func List(ctx context.Context, cli *clientv3.Client, prefix string) (Snapshot, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return Snapshot{}, fmt.Errorf("list %s: %w", prefix, err)
	}
	s := Snapshot{Rev: resp.Header.Revision, Entries: map[string]string{}, Leases: map[string]int64{}, Created: map[string]int64{}, At: time.Now()}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), prefix)
		s.Entries[name] = string(kv.Value)
		s.Leases[name] = kv.Lease
		s.Created[name] = kv.CreateRevision
	}
	return s, nil
}

// Watch sends a snapshot of prefix on out at once and after every change,
// until ctx ends (it then returns nil). out should have a buffer of one:
// a snapshot the reader has not taken yet is replaced by the newer one, so
// a slow reader sees the latest state, never a backlog.
func Watch(ctx context.Context, cli *clientv3.Client, prefix string, out chan Snapshot, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	failing := false
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		snap, err := List(lctx, cli, prefix)
		cancel()
		if err != nil {
			if !failing {
				log.Warn("etcd unavailable; keeping the last good state", "prefix", prefix, "err", err)
				failing = true
			}
			if !bo.Wait(ctx) {
				return nil
			}
			continue
		}
		if failing {
			log.Info("etcd reachable again; resynced", "prefix", prefix, "rev", snap.Rev)
			failing = false
		}
		bo.Reset()
		if !send(ctx, out, snap) {
			return nil
		}
		err = follow(ctx, cli, prefix, snap, out)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("watch ended; listing again", "prefix", prefix, "err", err)
		if !bo.Wait(ctx) {
			return nil
		}
	}
	return nil
}

// follow applies watch events to snap from snap.Rev+1 until the watch fails.
func follow(ctx context.Context, cli *clientv3.Client, prefix string, snap Snapshot, out chan Snapshot) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(snap.Rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.IsProgressNotify() || len(resp.Events) == 0 {
			continue
		}
		snap = snap.clone()
		for _, ev := range resp.Events {
			name := strings.TrimPrefix(string(ev.Kv.Key), prefix)
			switch ev.Type {
			case clientv3.EventTypeDelete:
				delete(snap.Entries, name)
				delete(snap.Leases, name)
				delete(snap.Created, name)
			default:
				snap.Entries[name] = string(ev.Kv.Value)
				snap.Leases[name] = ev.Kv.Lease
				snap.Created[name] = ev.Kv.CreateRevision
			}
		}
		snap.Rev = resp.Header.Revision
		snap.At = time.Now()
		if !send(ctx, out, snap) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("watch channel closed")
}

// send replaces any unread snapshot on out with s.
func send(ctx context.Context, out chan Snapshot, s Snapshot) bool {
	select {
	case <-out:
	default:
	}
	select {
	case out <- s:
		return true
	case <-ctx.Done():
		return false
	}
}
