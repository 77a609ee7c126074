package doapi

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// sortedValues are m's values in key order: lists and resolved rules come
// out the same on every call.
func sortedValues[K cmp.Ordered, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

// newUUID is a random version 4 UUID, as DigitalOcean's VPC, firewall and
// project ids are.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// byID is the resource of m that the path's {id} names, or a 404.
func byID[V any](r *http.Request, m map[int]V) (V, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		var zero V
		return zero, notFound()
	}
	return byKey(m, id)
}

// byKey is m[k], or a 404.
func byKey[K comparable, V any](m map[K]V, k K) (V, error) {
	v, ok := m[k]
	if !ok {
		return v, notFound()
	}
	return v, nil
}
