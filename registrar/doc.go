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
// The registry they share (the etcd key layout and the registration
// contract) is package registry, which unit generation imports too.
package registrar
