package cloudconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
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
// new stack or a re-run after a crash halfway converges. "Already in its
// pass's state" is decided by a marker (RotationMarkerDir) that a pass
// writes only after its last restart, not by the files: a pass cut off
// after etcd restarted but before the clients did (a dropped SSH session, a
// health wait that timed out) has every file in place, and its clients
// still hold the old certificates in memory. Every pass starts only when
// every member of the cluster answers /health.

// Which of a node's etcd clients a pass restarts after etcd. They all
// reach etcd on this node only (LocalEndpoint). In pass 1 they restart to
// read the bundle: the local etcd still presents the old CA's certificate,
// but in pass 2 it presents the new one the moment it restarts, and a
// client still trusting only the old CA is cut off until its own restart
// (fleetd then cannot renew its machine's registration, and once that
// lapses fleet unschedules every unit of the machine: CI saw it once, 45 s
// after etcd's restart). In pass 2 they restart again for their new
// certificates (fleetd by restartFleet, first); in pass 3 flannel and
// locksmith restart to forget the old CA (fleetd keeps it in memory until
// its next restart: it only ever talks to the local etcd, which presents
// the new CA's certificate).
const (
	restartAllClients = iota
	restartClientsButFleet
)

// RotationMarkerDir holds each pass's marker on a node: the fingerprint of
// what the pass installed, written once its last restart is done.
const RotationMarkerDir = "/var/lib/deployctl/rotation"

// passMarker is a pass's marker file and the fingerprint it must hold for
// payload (the new CA, or the node's new files), which the script carries
// (a hash: no secret).
func passMarker(pass, payload string) (path, want string) {
	sum := sha256.Sum256([]byte(payload))
	return RotationMarkerDir + "/" + pass, hex.EncodeToString(sum[:16])
}

// passDone is a pass's check that it finished on this node: its marker
// holds want, or (a node that finished the pass before markers existed)
// etcd runs with the files and every running client of the pass entered
// its active state after etcd did. It writes the marker in the second
// case.
func passDone(marker, want, etcdOlder string, clients []string) string {
	return fmt.Sprintf(`pass_done() {
  [ "$(sudo cat %[1]s 2>/dev/null)" = "%[2]s" ] && return 0
  if %[3]s; then return 1; fi
  etcd_t=$(systemctl show -p ActiveEnterTimestampMonotonic --value etcd-member.service)
  for u in %[4]s; do
    systemctl is-active -q "$u" || continue
    [ "$(systemctl show -p ActiveEnterTimestampMonotonic --value "$u")" -gt "${etcd_t:-0}" ] || return 1
  done
  mark_done
}
mark_done() { sudo install -d -m 0755 %[5]s && echo "%[2]s" | sudo tee %[1]s >/dev/null; }
`, marker, want, etcdOlder, strings.Join(clients, " "), RotationMarkerDir)
}

// clusterHealthy is a shell check run before a pass changes anything:
// every member etcd lists answers /health (read as fleet's role, over
// this node's CA file), or the script stops saying which does not.
func (c *Cluster) clusterHealthy() string {
	curl := c.fleetCurl()
	return fmt.Sprintf(`members=$(%[1]s %[2]s/v2/members) || { echo "$(hostname): the local etcd does not list its members; not starting this pass" >&2; exit 1; }
urls=$(echo "$members" | grep -o '"clientURLs":\[[^]]*\]' | grep -o 'https\?://[^"]*' || true)
[ -n "$urls" ] || { echo "$(hostname): no member lists a client URL; not starting this pass" >&2; exit 1; }
for u in $urls; do
  %[1]s "$u/health" 2>/dev/null | grep -q '"health":"true"' || { echo "$(hostname): member $u is not healthy; not starting this pass (etcdctl endpoint health --cluster)" >&2; exit 1; }
done
`, curl, c.LocalEndpoint())
}

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
		// fleetd first: from etcd's restart until fleetd's, fleetd (which
		// trusts only the old CA) cannot renew its machine's registration,
		// and once that lapses (its TTL) fleet unschedules every unit here
		// (CI saw it once: 45 s from etcd's restart, through flannel's and
		// locksmith's restarts, to fleetd's).
		s += c.restartFleet() + "sudo systemctl try-restart " + strings.Join(clientsButFleet, " ") + "\n"
	case restartClientsButFleet:
		s += "sudo systemctl try-restart " + strings.Join(clientsButFleet, " ") + "\n"
	}
	return s
}

// rotationLeaseHolder is the shell that names the holder of fleet's
// engine lease while a fleetd restarts: unique per run, so that a script
// left running by a dropped session cannot release (compare-and-delete) a
// retry's lease, nor renew it.
const rotationLeaseHolder = `holder="{\"MachineID\":\"deployctl-ca-rotation-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')\",\"Version\":1}"`

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
  %[3]s
  %[1]s -o /dev/null -X PUT "%[2]s/lease/engine-leader" --data-urlencode "value=$holder" -d ttl=30
  sleep 1
  sudo systemctl kill --signal=SIGKILL fleet.service
  sleep 0.5
  %[1]s -o /dev/null -X DELETE "%[2]s/machines/$(cat /etc/machine-id)/object" || true
  sudo systemctl restart fleet.service
  ok=
  for i in $(seq 1 120); do
    if sudo /opt/bin/fleetctl list-machines --full --no-legend 2>/dev/null | grep -q "^$(cat /etc/machine-id)"; then ok=1; break; fi
    # The lease lives 30 s and the wait up to 60: renewed every 10 s, only
    # while it is still this run's.
    if [ $((i %% 20)) -eq 0 ]; then
      %[1]s -o /dev/null -X PUT -G "%[2]s/lease/engine-leader" --data-urlencode "prevValue=$holder" --data-urlencode "value=$holder" -d ttl=30 || true
    fi
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
	// An etcd that never started has an empty timestamp, which date -d
	// reads as today's midnight: it counts as started at 0.
	return fmt.Sprintf(`[ "$(sudo stat -c %%Y %s)" -ge "$(t=$(systemctl show -p ActiveEnterTimestamp --value etcd-member.service); if [ -n "$t" ]; then date -d "$t" +%%s 2>/dev/null || echo 0; else echo 0; fi)" ]`, path)
}

// pemInFile is a shell condition: the file (read by cat, e.g. "sudo cat")
// holds the PEM block, compared with line breaks removed. grep gets it
// after -e: a pattern starting with "-----" is otherwise taken for options.
func pemInFile(cat, path, pem string) string {
	return fmt.Sprintf("%s %s | tr -d '\\n' | grep -qF -e '%s'", cat, path, strings.ReplaceAll(strings.TrimSpace(pem), "\n", ""))
}

// The clients a pass restarts after etcd, by unit: rotationRestart's, and
// passDone's evidence for a node that finished a pass before markers
// existed.
var (
	clientsButFleet = []string{"flanneld.service", "locksmithd.service"}
	allClients      = append(append([]string(nil), clientsButFleet...), "fleet.service")
)

// RotateTrustScript is pass 1 on one node: ca.pem becomes the CA(s) it holds
// plus newCA, then etcd and the node's clients restart (so that they trust
// the new CA before pass 2 makes etcd present it). Nothing happens on
// a node that already trusts newCA and finished the pass.
func (c *Cluster) RotateTrustScript(newCA string) string {
	marker, want := passMarker("trust", newCA)
	return fmt.Sprintf(`set -eu
umask 022
%[5]s%[6]sif %[2]s; then
  if pass_done; then echo "$(hostname): already trusts the new CA"; exit 0; fi
  echo "$(hostname): trusts the new CA, but etcd started before; restarting etcd"
else
{ sudo cat %[1]s; cat <<'DEPLOYCTL_NEW_CA'
%[3]s
DEPLOYCTL_NEW_CA
} | sudo tee %[1]s.tmp >/dev/null
sudo chmod 0644 %[1]s.tmp && sudo mv %[1]s.tmp %[1]s
echo "$(hostname): trusts the old and the new CA; restarting etcd"
fi
%[4]smark_done
`, CAFile(), pemInFile("sudo cat", CAFile(), newCA), strings.TrimRight(newCA, "\n"), c.rotationRestart(restartAllClients),
		// A node that finished pass 1 before markers existed restarted no
		// client in it: etcd running with the bundle is the evidence.
		c.clusterHealthy(), passDone(marker, want, etcdOlderThan(CAFile()), nil))
}

// RotateReissueScript is pass 2 on one node: its server and role
// certificates and keys become files' (issued by the new CA; files'
// CAFile entry is left out, ca.pem keeps the bundle of pass 1), then etcd
// and the node's clients restart. Nothing happens when every file is
// already files' and the pass finished; with the files in place but the
// pass unfinished (cut off before its clients restarted), etcd and every
// client restart.
func (c *Cluster) RotateReissueScript(files NodeTLSFiles) string {
	var want, install, payload strings.Builder
	paths := files.paths(CAFile())
	for _, p := range paths {
		fmt.Fprintf(&want, "sudo cp \"$staged/%s\" %s.new\n", path.Base(p), p)
		fmt.Fprintf(&want, "sudo cmp -s %[1]s %[1]s.new || changed=1\n", p)
		owner, mode := tlsFileOwnerMode(p)
		fmt.Fprintf(&install, "sudo chown %s %s.new && sudo chmod %s %s.new && sudo mv %s.new %s\n", owner, p, mode, p, p, p)
		payload.WriteString(p + "\n" + files[p])
	}
	marker, fp := passMarker("reissue", payload.String())
	return fmt.Sprintf(`set -eu
umask 077
%[7]s%[5]s%[6]schanged=
%[1]sif [ -z "$changed" ]; then
  sudo rm -f %[2]s/*.new
  if pass_done; then echo "$(hostname): certificates already from the new CA"; exit 0; fi
  echo "$(hostname): certificates from the new CA, but the pass did not finish (etcd or its clients started before); restarting etcd and its clients"
else
%[3]secho "$(hostname): certificates from the new CA installed; restarting etcd"
fi
%[4]smark_done
`, want.String(), TLSDir, install.String(), c.rotationRestart(restartAllClients), c.clusterHealthy(),
		passDone(marker, fp, etcdOlderThan(ServerCertFile()), allClients), receiveSecrets("staged", secretNames(paths)))
}

// RotateDropScript is pass 3 on one node: ca.pem becomes newCA alone, then
// etcd and the node's clients restart. Nothing happens when it already is
// and the pass finished.
func (c *Cluster) RotateDropScript(newCA string) string {
	marker, want := passMarker("drop", newCA)
	return fmt.Sprintf(`set -eu
umask 022
%[4]s%[5]ssudo tee %[1]s.new >/dev/null <<'DEPLOYCTL_NEW_CA'
%[2]s
DEPLOYCTL_NEW_CA
if sudo cmp -s %[1]s %[1]s.new; then
  sudo rm -f %[1]s.new
  if pass_done; then echo "$(hostname): trusts only the new CA already"; exit 0; fi
  echo "$(hostname): trusts only the new CA, but the pass did not finish; restarting etcd and its clients"
else
sudo chmod 0644 %[1]s.new && sudo mv %[1]s.new %[1]s
echo "$(hostname): trusts only the new CA; restarting etcd"
fi
%[3]smark_done
`, CAFile(), strings.TrimRight(newCA, "\n"), c.rotationRestart(restartClientsButFleet), c.clusterHealthy(),
		passDone(marker, want, etcdOlderThan(CAFile()), clientsButFleet))
}
