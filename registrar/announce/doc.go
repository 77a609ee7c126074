// Package announce is the discovery sidekick: it keeps one instance's
// address registered in etcd under a lease while the instance is running and
// healthy, withdraws it the moment it is not, and re-registers after a lost
// lease. The address comes from a Source: a Docker container followed
// through the Engine API's events, or a static address.
package announce
