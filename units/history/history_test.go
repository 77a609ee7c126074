package history_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/units/history"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func entry(spec string) history.Entry {
	return history.Entry{Name: "lb+someapp", Time: time.Now().UTC(), Hash: history.Hash([]byte(spec)), Version: "test", Outcome: history.Applied, Spec: spec}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// Only the newest Keep entries stay, numbered on from where they were;
// the deleted ones' keys are gone from etcd.
func TestKeepsTheNewestTen(t *testing.T) {
	_, cli := testenv.Etcd(t)
	for i := 1; i <= 13; i++ {
		seq, err := history.Record(ctx(t), cli, entry(fmt.Sprintf("v%d", i)))
		if err != nil || seq != i {
			t.Fatalf("record %d: seq %d, %v", i, seq, err)
		}
	}
	es, err := history.List(ctx(t), cli, "lb+someapp")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != history.Keep || es[0].Seq != 4 || es[9].Seq != 13 || es[9].Spec != "v13" {
		t.Fatalf("kept %d entries, %d to %d", len(es), es[0].Seq, es[len(es)-1].Seq)
	}
	resp, err := cli.Get(ctx(t), history.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != history.Keep {
		t.Fatalf("%d keys under %s, want %d (%v)", resp.Count, history.Prefix, history.Keep, err)
	}
}

// Writers at once never take the same number: each gets its own, and
// none is lost.
func TestConcurrentRecordsTakeDistinctNumbers(t *testing.T) {
	_, cli := testenv.Etcd(t)
	const n = 6
	var wg sync.WaitGroup
	seqs := make([]int, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			seqs[i], errs[i] = history.Record(ctx(t), cli, entry(fmt.Sprintf("w%d", i)))
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Ints(seqs)
	for i, s := range seqs {
		if s != i+1 {
			t.Fatalf("numbers taken: %v", seqs)
		}
	}
	es, _ := history.List(ctx(t), cli, "lb+someapp")
	if len(es) != n {
		t.Fatalf("%d entries after %d writers", len(es), n)
	}
}

func TestTarget(t *testing.T) {
	mk := func(seq int, spec, outcome string) history.Entry {
		e := entry(spec)
		e.Seq, e.Outcome = seq, outcome
		return e
	}
	es := []history.Entry{mk(3, "a", history.Applied), mk(4, "b", history.Applied), mk(5, "c", history.Stopped)}
	for _, tc := range []struct {
		entries []history.Entry
		to      int
		want    int
		err     string
	}{
		{es[:2], 0, 3, ""}, // the one before the newest
		{es, 0, 4, ""},     // a stopped newest: the last applied
		{append(es, mk(6, "b", history.Applied)), 0, 3, ""}, // the newest's own spec is skipped
		{es, 5, 5, ""},
		{es, 2, 0, "--to 2: history lb+someapp holds entries 3 to 5"},
		{es[:1], 0, 0, "no applied spec other than #3's"},
		{nil, 0, 0, "is empty"},
	} {
		got, err := history.Target("lb+someapp", tc.entries, tc.to)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("to %d: %v, want %q", tc.to, err, tc.err)
			}
			continue
		}
		if err != nil || got.Seq != tc.want {
			t.Errorf("to %d: #%d %v, want #%d", tc.to, got.Seq, err, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"someapp", "lb+someapp", "a-1+b"} {
		if err := history.CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "../x", "a++b", "A"} {
		if history.CheckName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
