// Package nginx keeps an nginx load balancer following the registrations
// under one etcd prefix: it renders the upstream file, writes it atomically,
// validates the whole configuration with `nginx -t`, restores the last good
// file when validation fails, and reloads nginx (a host process by pid file
// or `nginx -s reload`, or an nginx container through the Docker Engine
// API), at once for the first change and then at most once per interval
// with a trailing reload, so the final state is always applied.
package nginx
