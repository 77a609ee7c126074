package cloudconfig

import (
	"fmt"
	"strings"
)

// Rotating the cluster's CA without an outage takes three passes over the
// nodes, each node by node (the next only once this node's etcd is healthy
// again), in this order:
//
//  1. RotateTrustScript: every node trusts the old and the new CA (ca.pem
//     is a bundle of both); etcd restarts to read it.
//  2. RotateReissueScript: every node gets its server and role
//     certificates from the new CA; peers and clients still trust both.
//  3. RotateDropScript: every node trusts only the new CA.
//
// etcd reads its CA file only when it starts, so each pass restarts etcd
// on one node at a time (quorum holds with the others up) and waits until
// it answers /health as part of a cluster with a leader; fleet, flannel
// and locksmith read theirs when they start, so they restart after it
// when their local etcd's certificate changes (rotationRestart; Docker
// only Wants flanneld, so flannel's restart leaves the containers alone).
// The registrar reads the CA file on every new connection (package etcdconn),
// so its processes follow without a restart. Each script is idempotent: on
// a node already in its pass's state it changes and restarts nothing, so a
// new stack or a re-run after a crash halfway converges.

// Which of a node's etcd clients a pass restarts after etcd. They all
// reach etcd on this node only (LocalEndpoint), so in pass 1 none needs
// to: the local etcd still presents the old CA's certificate, which they
// trust, and trusts theirs. In pass 2 it presents the new one, so they
// restart to read the bundle and their new certificates (fleetd by
// restartFleet); in pass 3 flannel and locksmith restart to forget the old
// CA (fleetd keeps it in memory until its next restart: it only ever
// talks to the local etcd, which presents the new CA's certificate).
const (
	restartNoClients = iota
	restartAllClients
	restartClientsButFleet
)

// rotationRestart restarts etcd on this node and waits until it answers
// /health as part of a cluster with a leader, then restarts the node's
// etcd clients as clients says.
func (c *Cluster) rotationRestart(clients int) string {
	curl := c.fleetCurl()
	s := fmt.Sprintf(`sudo systemctl restart etcd-member.service
ok=
for i in $(seq 1 90); do
  if %[1]s %[2]s/health 2>/dev/null | grep -q '"health":"true"'; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || { echo "etcd on $(hostname) is not healthy 90 s after its restart: journalctl -u etcd-member" >&2; exit 1; }
echo "$(hostname): etcd healthy after $i s"
`, curl, c.LocalEndpoint())
	switch clients {
	case restartAllClients:
		s += "sudo systemctl try-restart flanneld.service locksmithd.service\n" + c.restartFleet()
	case restartClientsButFleet:
		s += "sudo systemctl try-restart flanneld.service locksmithd.service\n"
	}
	return s
}

// rotationLeaseHolder holds fleet's engine lease while a fleetd restarts.
const rotationLeaseHolder = `{"MachineID":"deployctl-ca-rotation","Version":1}`

// fleetCurl is curl to the local etcd as fleet's role, bounded to 5 s.
func (c *Cluster) fleetCurl() string { return "sudo curl -fsS --max-time 5" + c.CurlTLSArgs(RoleFleet) }

// restartFleet restarts fleetd so that it reads its new certificate,
// without fleet moving this machine's units. A fleetd stopped with SIGTERM
// unloads its units and gives up its machine (design §6: its states drop
// in ~1 s), and fleet reschedules them: an outage for every instance and
// load balancer here. Killed, it leaves its units running and its machine
// registered, but a new fleetd cannot register while that registration
// lives (fleet 1.0.0: "Key already exists", retried after 1, 2, 4, 8, 16 s),
// and fleet's engine moved the units in the gap (measured on the local
// cluster). So, for the few seconds of the restart, the engine lease is
// held in deployctl's name (fleet 1.0.0's engines keep off a lease held at
// their version, and the leader's renewal, a compare-and-swap, fails): no
// engine reschedules anything. fleetd is killed, its registration removed,
// a new fleetd started at once; once fleet lists the machine again the
// lease is released (only if still deployctl's) and an engine takes it
// back, finding every machine in place.
func (c *Cluster) restartFleet() string {
	curl := c.fleetCurl()
	keys := c.LocalEndpoint() + "/v2/keys/_coreos.com/fleet"
	return fmt.Sprintf(`if systemctl is-active -q fleet.service; then
  holder='%[3]s'
  %[1]s -o /dev/null -X PUT "%[2]s/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
  sleep 1
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  %[1]s -o /dev/null -X DELETE "%[2]s/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
  ok=
  for i in $(seq 1 120); do
    if sudo /opt/bin/fleetctl list-machines --full --no-legend 2>/dev/null | grep -q "^$(cat /etc/machine-id)"; then ok=1; break; fi
    sleep 0.5
  done
  %[1]s -o /dev/null -X DELETE -G "%[2]s/lease/engine-leader" --data-urlencode "prevValue=$holder" || true
  [ -n "$ok" ] || { echo "fleet on $(hostname) did not list this machine 60 s after its restart: journalctl -u fleet" >&2; exit 1; }
  echo "$(hostname): fleet restarted, its machine and units kept"
fi
`, curl, keys, rotationLeaseHolder)
}

// etcdOlderThan is a shell condition: etcd-member last started before
// path was last changed, so it does not run with what path holds now (a
// pass stopped after writing its files and before etcd restarted).
func etcdOlderThan(path string) string {
	return fmt.Sprintf(`[ "$(sudo stat -c %%Y %s)" -ge "$(date -d "$(systemctl show -p ActiveEnterTimestamp --value etcd-member.service)" +%%s 2>/dev/null || echo 0)" ]`, path)
}

// pemInFile is a shell condition: the file (read by cat, e.g. "sudo cat")
// holds the PEM block, compared with line breaks removed. grep gets it
// after -e: a pattern starting with "-----" is otherwise taken for options.
func pemInFile(cat, path, pem string) string {
	return fmt.Sprintf("%s %s | tr -d '\\n' | grep -qF -e '%s'", cat, path, strings.ReplaceAll(strings.TrimSpace(pem), "\n", ""))
}

// RotateTrustScript is pass 1 on one node: ca.pem becomes the CA(s) it holds
// plus newCA, then etcd and the node's clients restart. Nothing happens on
// a node that already trusts newCA.
func (c *Cluster) RotateTrustScript(newCA string) string {
	return fmt.Sprintf(`set -eu
umask 022
if %[2]s; then
  if ! %[5]s; then echo "$(hostname): already trusts the new CA"; exit 0; fi
  echo "$(hostname): trusts the new CA, but etcd started before; restarting etcd"
else
{ sudo cat %[1]s; cat <<'DEPLOYCTL_NEW_CA'
%[3]s
DEPLOYCTL_NEW_CA
} | sudo tee %[1]s.tmp >/dev/null
sudo chmod 0644 %[1]s.tmp && sudo mv %[1]s.tmp %[1]s
echo "$(hostname): trusts the old and the new CA; restarting etcd"
fi
%[4]s`, CAFile(), pemInFile("sudo cat", CAFile(), newCA), strings.TrimRight(newCA, "\n"), c.rotationRestart(restartNoClients), etcdOlderThan(CAFile()))
}

// RotateReissueScript is pass 2 on one node: its server and role
// certificates and keys become files' (issued by the new CA; files'
// CAFile entry is left out, ca.pem keeps the bundle of pass 1), then etcd
// and the node's clients restart. Nothing happens when every file is
// already files'.
func (c *Cluster) RotateReissueScript(files NodeTLSFiles) string {
	var want, install strings.Builder
	for i, p := range files.paths(CAFile()) {
		delim := fmt.Sprintf("DEPLOYCTL_PEM_%d", i)
		fmt.Fprintf(&want, "sudo tee %s.new >/dev/null <<'%s'\n%s\n%s\n", p, delim, strings.TrimRight(files[p], "\n"), delim)
		fmt.Fprintf(&want, "sudo cmp -s %[1]s %[1]s.new || changed=1\n", p)
		owner, mode := tlsFileOwnerMode(p)
		fmt.Fprintf(&install, "sudo chown %s %s.new && sudo chmod %s %s.new && sudo mv %s.new %s\n", owner, p, mode, p, p, p)
	}
	return fmt.Sprintf(`set -eu
umask 077
changed=
%[1]sif [ -z "$changed" ]; then
  sudo rm -f %[2]s/*.new
  if ! %[5]s; then echo "$(hostname): certificates already from the new CA"; exit 0; fi
  echo "$(hostname): certificates from the new CA, but etcd started before; restarting etcd"
else
%[3]secho "$(hostname): certificates from the new CA installed; restarting etcd"
fi
%[4]s`, want.String(), TLSDir, install.String(), c.rotationRestart(restartAllClients), etcdOlderThan(ServerCertFile()))
}

// RotateDropScript is pass 3 on one node: ca.pem becomes newCA alone, then
// etcd and the node's clients restart. Nothing happens when it already is.
func (c *Cluster) RotateDropScript(newCA string) string {
	return fmt.Sprintf(`set -eu
umask 022
sudo tee %[1]s.new >/dev/null <<'DEPLOYCTL_NEW_CA'
%[2]s
DEPLOYCTL_NEW_CA
if sudo cmp -s %[1]s %[1]s.new; then
  sudo rm -f %[1]s.new
  if ! %[4]s; then echo "$(hostname): trusts only the new CA already"; exit 0; fi
  echo "$(hostname): trusts only the new CA, but etcd started before; restarting etcd"
else
sudo chmod 0644 %[1]s.new && sudo mv %[1]s.new %[1]s
echo "$(hostname): trusts only the new CA; restarting etcd"
fi
%[3]s`, CAFile(), strings.TrimRight(newCA, "\n"), c.rotationRestart(restartClientsButFleet), etcdOlderThan(CAFile()))
}
