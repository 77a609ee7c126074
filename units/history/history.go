// Package history keeps the deploy specs deployctl applied in etcd, so that
// `deployctl units history` can list them and `deployctl units rollback`
// can apply one again. A history is named by the set of services its spec
// holds (NameOf); its entries live under Prefix/NAME/SEQ, numbered from 1
// and never reused, the newest Keep of them kept. An entry is written in
// one etcd transaction that also deletes the ones beyond Keep, and only if
// no other writer took its number first.
package history

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deployctl/deployctl/units/deployspec"
)

// Prefix is where histories live: outside the registrar's /services/ (its
// etcd role may write nothing else), written by the operator's user.
const Prefix = "/deployctl/history/"

// Keep is how many entries a history holds; older ones are deleted.
const Keep = 10

// Outcomes of an entry.
const (
	// Applied: fleet reported the whole plan applied.
	Applied = "applied"
	// Stopped: the roll stopped before that (Reason says why); fleet holds
	// part of the spec.
	Stopped = "stopped"
)

// Entry is one applied (or stopped) spec.
type Entry struct {
	Seq  int    `json:"seq"`
	Name string `json:"name"`
	// Time is when fleet reported the plan applied (or the roll stopped).
	Time time.Time `json:"time"`
	// Hash is the SHA-256 of Spec, hex.
	Hash    string `json:"sha256"`
	Version string `json:"deployctlVersion"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	// File is the path the spec was read from (informational).
	File string `json:"file,omitempty"`
	// Start and Prune are the submit options the spec was applied with;
	// rollback applies it with them again.
	Start bool `json:"start,omitempty"`
	Prune bool `json:"prune,omitempty"`
	// RollbackOf is the entry this one re-applied (0: a submit).
	RollbackOf int `json:"rollbackOf,omitempty"`
	// Spec is the deploy.yaml text as applied.
	Spec string `json:"spec"`
}

// Hash is the hex SHA-256 of a spec's text.
func Hash(spec []byte) string {
	sum := sha256.Sum256(spec)
	return hex.EncodeToString(sum[:])
}

// NameOf names a spec's history: its service names in order, joined by
// "+" (e.g. lb+someapp). Service names are [a-z0-9-], so the name is a
// safe key segment.
func NameOf(s *deployspec.Spec) string {
	names := make([]string, 0, len(s.Services))
	for _, sv := range s.Services {
		names = append(names, sv.Name)
	}
	sort.Strings(names)
	return strings.Join(names, "+")
}

// CheckName refuses a name that is not a history name (a typo of one, or
// something with a slash that would reach outside the history's keys).
func CheckName(name string) error {
	if name == "" {
		return errors.New("empty history name")
	}
	for _, part := range strings.Split(name, "+") {
		if part == "" || strings.Trim(part, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("%q is not a history name: service names joined by '+', e.g. lb+someapp", name)
		}
	}
	return nil
}

func dir(name string) string { return Prefix + name + "/" }

// key is an entry's key; the number is zero-padded so keys sort by it.
func key(name string, seq int) string { return fmt.Sprintf("%s%010d", dir(name), seq) }

func seqOf(k string) (int, bool) {
	i := strings.LastIndexByte(k, '/')
	n, err := strconv.Atoi(k[i+1:])
	return n, err == nil && n > 0
}
