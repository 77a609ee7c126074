package cloudconfig

import (
	"fmt"
	"sort"
	"strings"
)

// FleetSocket is fleet.socket: fleetd serves its API only on sockets
// systemd hands it. Not world-writable (systemd's default 0666 lets any
// local user drive fleet); group docker, which core is in on Flatcar, so
// an SSH tunnel as core (deployctl units --tunnel, fleetctl --tunnel)
// reaches it: found by the local cluster, where the tunnel was refused.
const FleetSocket = `[Unit]
Description=fleet API socket

[Socket]
ListenStream=/var/run/fleet.sock
SocketMode=0660
SocketGroup=docker

[Install]
WantedBy=sockets.target
`

// FleetService is fleet.service for node.
func (c *Cluster) FleetService(n Node) string {
	meta := map[string]string{"name": n.Name}
	if n.Role != "" {
		meta["role"] = n.Role
	}
	if n.Region != "" {
		meta["region"] = n.Region
	}
	for k, v := range n.Metadata {
		meta[k] = v
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, k+"="+meta[k])
	}
	l := []string{
		"[Unit]",
		"Description=fleet daemon (v1.0.0, etcd v2 API)",
		"Requires=fleet-install.service fleet.socket",
		"After=fleet-install.service fleet.socket etcd-member.service",
		"Wants=etcd-member.service",
		"",
		"[Service]",
	}
	env(&l, "FLEET_ETCD_SERVERS", c.LocalEndpoint())
	env(&l, "FLEET_PUBLIC_IP", "$private_ipv4")
	env(&l, "FLEET_METADATA", strings.Join(pairs, ","))
	if c.TLS != nil {
		env(&l, "FLEET_ETCD_CAFILE", CAFile())
		env(&l, "FLEET_ETCD_CERTFILE", ClientCertFile(RoleFleet))
		env(&l, "FLEET_ETCD_KEYFILE", ClientKeyFile(RoleFleet))
	}
	l = append(l, "ExecStart=/opt/bin/fleetd", "Restart=always", "RestartSec=10s", "", "[Install]", "WantedBy=multi-user.target")
	return strings.Join(l, "\n") + "\n"
}

// FleetInstallScript downloads the pinned fleet release, refuses it unless
// its SHA-256 matches, and installs fleetd and fleetctl into /opt/bin.
func (c *Cluster) FleetInstallScript() string {
	return fmt.Sprintf(`#!/bin/sh
# Installs fleet from its pinned release; a checksum mismatch fails before
# anything is installed, so a tampered or truncated download never runs.
set -eu
url='%s'
sum='%s'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 5 --retry-delay 3 -o "$tmp/fleet.tar.gz" "$url"
echo "$sum  $tmp/fleet.tar.gz" | sha256sum -c -
tar -xzf "$tmp/fleet.tar.gz" -C "$tmp" --strip-components=1
install -m 0755 "$tmp/fleetd" "$tmp/fleetctl" /opt/bin/
`, c.Fleet.URL, c.Fleet.SHA256)
}

// FleetInstallService runs the install script once per node.
const FleetInstallService = `[Unit]
Description=Install fleet v1.0.0 from its pinned, checksummed release
ConditionPathExists=!/opt/bin/fleetd
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/bin/install-fleet

[Install]
WantedBy=multi-user.target
`
