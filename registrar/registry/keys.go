// Package registry is the service registry's contract, shared by the
// registrar's two halves and by unit generation: the etcd key layout
// (<prefix>/<service>/upstream/<instance> = "IP:port" as plain text, every
// key attached to a lease; a registration record beside it under meta/;
// the sidekick's state under status/, StatusKey) and the rules a registration must follow, checked where it enters.
package registry

import (
	"fmt"
	"path"
	"strings"
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

// CheckPrefix checks a key prefix: "/" or an absolute path of segments of
// letters, digits, '-', '_' and '.', none empty, "." or "..", with no
// trailing slash. A prefix that path cleaning would change (such as
// /services/../x, which becomes /x) is refused: the keys written and the
// grants that allow them must name the same place.
func CheckPrefix(p string) error {
	if p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%q must start with / and not end with one, e.g. /services", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q has an empty, \".\" or \"..\" segment; give the path as it is meant, e.g. /services", p)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
				return fmt.Errorf("%q: segment %q may only hold letters, digits, '-', '_' and '.'", p, seg)
			}
		}
	}
	return nil
}
