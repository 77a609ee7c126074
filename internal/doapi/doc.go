// Package doapi serves a stand-in for DigitalOcean's API v2: the endpoints
// infra's program reaches through the real Pulumi provider (design §13) —
// account keys, tags, VPCs, custom images, droplets, firewalls and
// projects — with the JSON shapes of DigitalOcean's OpenAPI spec and
// godo's types, and DigitalOcean's error shapes (a status code with an
// `id` and a `message`), so that the provider's own messages reach the
// user.
//
// A droplet is a machine a Machines implementation boots from the user
// data the provider sent; destroying the droplet removes the machine. The
// firewalls are enforced on the machines as DigitalOcean enforces them:
// inbound traffic only as a rule allows it (by source tag, droplet and
// CIDR, protocol and port), on every droplet a firewall applies to.
//
// The server's state is a JSON file rewritten atomically after every
// change, so a restart of the serving process keeps every resource; a
// loop level-triggered on that state boots droplets that are not up yet
// and applies the firewalls, with backoff, and again at every resync.
package doapi
