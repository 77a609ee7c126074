// Package registry is the service registry's contract, shared by the
// registrar's two halves and by unit generation: the etcd key layout
// (<prefix>/<service>/upstream/<instance> = "IP:port" as plain text, every
// key attached to a lease; a registration record beside it under meta/)
// and the rules a registration must follow, checked where it enters.
package registry

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

// VersionLabel is the container label that says which version of its unit
// started the container: the generated app unit sets it and its sidekick
// (registrar announce --container-version) registers only a container
// that carries the same value, so a new version's sidekick never
// registers, nor says READY=1 for, the old version's container.
const VersionLabel = "io.deployctl.version"
