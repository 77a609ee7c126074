// Package cloudconfig is the typed model of the #cloud-config user data
// coreos-cloudinit (and its Flatcar fork) accepts, a deterministic renderer
// that emits underscore keys only, a validator that applies
// coreos-cloudinit's rules plus deployctl's own, and the node profile that
// boots a cluster node on today's Flatcar: etcd 3.5 through
// etcd-member.service with the v2 API on, fleet 1.0.0 installed from its
// pinned release, flannel on the v2 API, Docker on the flannel subnet, and
// /opt/bin ready for the registrar. It is pure: it imports nothing else of
// the project. The scripts deployctl runs on the nodes over SSH, once they
// have booted from this user data, are package nodescripts.
package cloudconfig
