package history

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxTries bounds how often Record takes the next number again after
// another writer took it.
const maxTries = 20

// Record writes e as the next entry of e.Name and deletes the entries
// beyond Keep, in one transaction that succeeds only if no other writer
// took the number first (then it reads again and retries). It returns the
// entry's number.
func Record(ctx context.Context, kv clientv3.KV, e Entry) (int, error) {
	if err := CheckName(e.Name); err != nil {
		return 0, err
	}
	for try := 0; try < maxTries; try++ {
		resp, err := kv.Get(ctx, dir(e.Name), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return 0, fmt.Errorf("read history %s: %w", e.Name, err)
		}
		var seqs []int
		for _, kvp := range resp.Kvs {
			if n, ok := seqOf(string(kvp.Key)); ok {
				seqs = append(seqs, n)
			}
		}
		sort.Ints(seqs)
		e.Seq = 1
		if len(seqs) > 0 {
			e.Seq = seqs[len(seqs)-1] + 1
		}
		val, err := json.Marshal(e)
		if err != nil {
			return 0, fmt.Errorf("encode history entry: %w", err)
		}
		k := key(e.Name, e.Seq)
		ops := []clientv3.Op{clientv3.OpPut(k, string(val))}
		for _, n := range seqs {
			if n <= e.Seq-Keep {
				ops = append(ops, clientv3.OpDelete(key(e.Name, n)))
			}
		}
		txn, err := kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("write history %s #%d: %w", e.Name, e.Seq, err)
		}
		if txn.Succeeded {
			return e.Seq, nil
		}
	}
	return 0, fmt.Errorf("write history %s: another deployctl kept taking the next number (%d tries)", e.Name, maxTries)
}

// List returns a history's entries, oldest first.
func List(ctx context.Context, kv clientv3.KV, name string) ([]Entry, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	resp, err := kv.Get(ctx, dir(name), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read history %s: %w", name, err)
	}
	var out []Entry
	for _, kvp := range resp.Kvs {
		n, ok := seqOf(string(kvp.Key))
		if !ok {
			continue
		}
		var e Entry
		if err := json.Unmarshal(kvp.Value, &e); err != nil {
			return nil, fmt.Errorf("history entry %s: %w", kvp.Key, err)
		}
		e.Seq, e.Name = n, name
		out = append(out, e)
	}
	return out, nil
}

// Names lists the histories etcd holds, sorted.
func Names(ctx context.Context, kv clientv3.KV) ([]string, error) {
	resp, err := kv.Get(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("read histories under %s: %w", Prefix, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, kvp := range resp.Kvs {
		rest := strings.TrimPrefix(string(kvp.Key), Prefix)
		i := strings.IndexByte(rest, '/')
		if i <= 0 || seen[rest[:i]] {
			continue
		}
		seen[rest[:i]] = true
		names = append(names, rest[:i])
	}
	sort.Strings(names)
	return names, nil
}

// Target picks the entry rollback applies. With to > 0 it is entry number
// to. Otherwise it is the newest applied entry before the newest entry
// whose spec differs from the newest's: the newest is what fleet holds
// (or, stopped, what it was left partly on), and the one to go back to is
// the last other spec fleet held whole. Stopped entries are skipped, and
// so are earlier entries of the newest's spec (a rollback recorded one),
// so that rolling back twice goes back twice.
func Target(name string, entries []Entry, to int) (Entry, error) {
	if len(entries) == 0 {
		return Entry{}, fmt.Errorf("history %s is empty: nothing was submitted with history recorded", name)
	}
	newest := entries[len(entries)-1]
	if to != 0 {
		for _, e := range entries {
			if e.Seq == to {
				return e, nil
			}
		}
		return Entry{}, fmt.Errorf("--to %d: history %s holds entries %d to %d (the newest %d are kept); see `deployctl units history %s`", to, name, entries[0].Seq, newest.Seq, Keep, name)
	}
	for i := len(entries) - 2; i >= 0; i-- {
		if entries[i].Outcome == Applied && entries[i].Hash != newest.Hash {
			return entries[i], nil
		}
	}
	return Entry{}, fmt.Errorf("history %s holds no applied spec other than #%d's to roll back to; pick an entry with --to N (see `deployctl units history %s`)", name, newest.Seq, name)
}
