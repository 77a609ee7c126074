// Package localcluster runs a deployctl cluster on this machine: every node
// a Docker container with systemd as PID 1 and its own Docker engine,
// booted from the user data cloudconfig renders (applied by Flatcar's own
// coreos-cloudinit from a DigitalOcean-shaped metadata service), with
// stand-ins for Flatcar's base units (etcd-member, flanneld,
// flannel-docker-opts and their wrappers, locksmithd) that behave as
// Flatcar's files say. It bootstraps etcd, TLS and the registrar over real
// SSH with the scripts infra runs, pinned to each node's host key. It is
// what coreos-vagrant was for CoreOS: the whole story, no cloud account.
//
// Limits: the nodes share this machine's kernel (no Flatcar kernel, no
// update engine, no module loading) and there is no DigitalOcean API.
package localcluster
