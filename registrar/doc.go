// Package registrar documents the registrar binary's two halves, which live
// in its subpackages:
//
//   - announce: the discovery sidekick. It keeps
//     /services/<service>/upstream/<instance> = IP:port alive in etcd under a
//     lease while the instance runs and is healthy, and withdraws it at once
//     when the container stops.
//   - catalog, upstream and nginx: the load balancer's side. catalog lists
//     and watches the prefix, upstream renders the nginx upstream block, and
//     nginx writes, validates and reloads.
//
// The etcd key contract: the key is <prefix>/<service>/upstream/<instance>,
// the value "IP:port" as plain text, every key attached to a lease.
package registrar

import (
	"path"
	"time"
)

// DefaultPrefix is the etcd key prefix for service registrations.
const DefaultPrefix = "/services"

// UpstreamPrefix is the etcd prefix under which service's instances are
// registered: "<prefix>/<service>/upstream/".
func UpstreamPrefix(prefix, service string) string {
	return path.Join("/", prefix, service, "upstream") + "/"
}

// Key is the etcd key of one instance.
func Key(prefix, service, instance string) string {
	return UpstreamPrefix(prefix, service) + instance
}

// MetaKey is the etcd key of one instance's registration record
// (<prefix>/<service>/meta/<instance>), kept under the same lease.
func MetaKey(prefix, service, instance string) string {
	return path.Join("/", prefix, service, "meta", instance)
}

// Meta is the registration record at MetaKey: the address registered and
// since when, for `deployctl services ls`.
type Meta struct {
	Addr  string    `json:"addr"`
	Since time.Time `json:"since"`
}
