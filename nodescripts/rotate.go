package nodescripts

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
)

// Rotating the cluster's CA without an outage takes three passes over the
// nodes, each node by node (the next only once this node's etcd is healthy
// again), in this order:
//
//  1. RotateTrust: every node trusts the old and the new CA (ca.pem is a
//     bundle of both); etcd restarts to read it.
//  2. RotateReissue: every node gets its server and role certificates
//     from the new CA; peers and clients still trust both.
//  3. RotateDrop: every node trusts only the new CA.
//
// etcd reads its CA file only when it starts, so each pass restarts etcd
// on one node at a time (quorum holds with the others up) and waits until
// it answers /health as part of a cluster with a leader; fleet, flannel
// and locksmith read theirs when they start, so they restart after it
// when their local etcd's certificate changes (parts/rotation-restart.sh;
// Docker only Wants flanneld, so flannel's restart leaves the containers
// alone). The registrar reads the CA file on every new connection (package
// etcdconn), so its processes follow without a restart. Each script is
// idempotent: on a node already in its pass's state it changes and
// restarts nothing, so a new stack or a re-run after a crash halfway
// converges. "Already in its pass's state" is decided by a marker
// (RotationMarkerDir) that a pass writes only after its last restart, not
// by the files: a pass cut off after etcd restarted but before the clients
// did (a dropped SSH session, a health wait that timed out) has every file
// in place, and its clients still hold the old certificates in memory.
// Every pass starts only when every member of the cluster answers /health
// (parts/cluster-healthy.sh).
//
// Which of a node's etcd clients a pass restarts after etcd: they all
// reach etcd on this node only (LocalEndpoint). In pass 1 they restart to
// read the bundle: the local etcd still presents the old CA's certificate,
// but in pass 2 it presents the new one the moment it restarts, and a
// client still trusting only the old CA is cut off until its own restart
// (fleetd then cannot renew its machine's registration, and once that
// lapses fleet unschedules every unit of the machine: CI saw it once, 45 s
// after etcd's restart). In pass 2 they restart again for their new
// certificates (fleetd by parts/restart-fleet.sh, first); in pass 3
// flannel and locksmith restart to forget the old CA (fleetd keeps it in
// memory until its next restart: it only ever talks to the local etcd,
// which presents the new CA's certificate).
//
// parts/restart-fleet.sh restarts fleetd so that it reads its new
// certificate, without fleet moving this machine's units. A fleetd stopped
// with SIGTERM unloads its units and gives up its machine (design §6: its
// states drop in ~1 s), and fleet reschedules them: an outage for every
// instance and load balancer here. Killed, it leaves its units running and
// its machine registered, but a new fleetd cannot register while that
// registration lives (fleet 1.0.0: "Key already exists", retried after 1,
// 2, 4, 8, 16 s), and fleet's engine moved the units in the gap (measured
// on the local cluster). So, for the few seconds of the restart, the
// engine lease is held in deployctl's name (fleet 1.0.0's engines keep off
// a lease held at their version, and the leader's renewal, a
// compare-and-swap, fails): no engine reschedules anything. fleetd is
// killed, its registration removed, a new fleetd started at once; once
// fleet lists the machine again the lease is released (only if still
// deployctl's) and an engine takes it back, finding every machine in
// place. The lease's holder is unique per run, so that a script left
// running by a dropped session cannot release (compare-and-delete) a
// retry's lease, nor renew it.

// RotationMarkerDir holds each pass's marker on a node: the fingerprint of
// what the pass installed, written once its last restart is done.
const RotationMarkerDir = "/var/lib/deployctl/rotation"

// The clients a pass restarts after etcd, by unit: rotation-restart.sh's,
// and pass-done.sh's evidence for a node that finished a pass before
// markers existed.
var (
	clientsButFleet = []string{"flanneld.service", "locksmithd.service"}
	allClients      = append(append([]string(nil), clientsButFleet...), "fleet.service")
)

// health are the parameters of parts/cluster-healthy.sh (every member etcd
// lists answers /health, read as fleet's role over this node's CA file, or
// the script stops saying which does not).
type health struct{ Curl, Endpoint string }

// restart are the parameters of parts/rotation-restart.sh: etcd restarts
// and answers /health as part of a cluster with a leader, then fleetd
// (parts/restart-fleet.sh, when RestartFleet) and Clients restart.
type restart struct {
	Curl, Endpoint, Keys string
	RestartFleet         bool
	Clients              []string
}

// passDone are the parameters of parts/pass-done.sh: a pass's check that
// it finished on this node: its Marker holds Want, or (a node that
// finished the pass before markers existed) etcd runs with the files (it
// started after EtcdOlderThan last changed; an etcd that never started has
// an empty timestamp, counted as 0) and every running client of Clients
// entered its active state after etcd did. It writes the marker in the
// second case.
type passDone struct {
	Marker, Want, EtcdOlderThan, MarkerDir string
	Clients                                []string
}

// pemCheck are the parameters of parts/pem-in-file.sh, a shell condition:
// the file at Path (read by Cat, e.g. "sudo cat") holds the PEM block,
// compared with line breaks removed. grep gets it after -e: a pattern
// starting with "-----" is otherwise taken for options.
type pemCheck struct{ Cat, Path, PEM string }

func newPEMCheck(cat, path, pem string) pemCheck {
	return pemCheck{cat, path, strings.ReplaceAll(strings.TrimSpace(pem), "\n", "")}
}

func pemInFile(cat, path, pem string) string {
	return renderLine("pem-in-file.sh", newPEMCheck(cat, path, pem))
}

// newPassDone is the check of the pass named pass, whose marker holds the
// fingerprint of payload (the new CA, or the node's new files), which the
// script carries (a hash: no secret).
func newPassDone(pass, payload, etcdOlderThan string, clients []string) passDone {
	sum := sha256.Sum256([]byte(payload))
	return passDone{Marker: RotationMarkerDir + "/" + pass, Want: hex.EncodeToString(sum[:16]),
		EtcdOlderThan: etcdOlderThan, MarkerDir: RotationMarkerDir, Clients: clients}
}

// pass are the parameters every pass shares.
type pass struct {
	Health  health
	Pass    passDone
	Restart restart
	CA      string
}

func newPass(c *cloudconfig.Cluster, done passDone, fleet bool) pass {
	curl, ep := fleetCurl(c), c.LocalEndpoint()
	return pass{Health: health{curl, ep}, Pass: done, CA: cloudconfig.CAFile(),
		Restart: restart{Curl: curl, Endpoint: ep, Keys: ep + "/v2/keys/_coreos.com/fleet", RestartFleet: fleet, Clients: clientsButFleet}}
}

// RotateTrust is pass 1 on one node: ca.pem becomes the CA(s) it holds plus
// newCA, then etcd and the node's clients restart (so that they trust the
// new CA before pass 2 makes etcd present it). Nothing happens on a node
// that already trusts newCA and finished the pass. A node that finished
// pass 1 before markers existed restarted no client in it: etcd running
// with the bundle is the evidence.
func RotateTrust(c *cloudconfig.Cluster, newCA string) string {
	return render("rotate-trust.sh", struct {
		pass
		Trusted pemCheck
		NewCA   string
	}{newPass(c, newPassDone("trust", newCA, cloudconfig.CAFile(), nil), true),
		newPEMCheck("sudo cat", cloudconfig.CAFile(), newCA),
		strings.TrimRight(newCA, "\n")})
}

// RotateReissue is pass 2 on one node: its server and role certificates
// and keys become files' (issued by the new CA; files' CAFile entry is
// left out, ca.pem keeps the bundle of pass 1), then etcd and the node's
// clients restart. Nothing happens when every file is already files' and
// the pass finished; with the files in place but the pass unfinished (cut
// off before its clients restarted), etcd and every client restart.
func RotateReissue(c *cloudconfig.Cluster, files cloudconfig.NodeTLSFiles) string {
	fs := tlsFiles(files, cloudconfig.CAFile())
	var payload strings.Builder
	for _, f := range fs {
		payload.WriteString(f.Path + "\n" + files[f.Path])
	}
	done := newPassDone("reissue", payload.String(), cloudconfig.ServerCertFile(), allClients)
	return render("rotate-reissue.sh", struct {
		pass
		Secrets received
		Files   []tlsFile
		Dir     string
	}{newPass(c, done, true), receive("staged", names(fs)), fs, cloudconfig.TLSDir})
}

// RotateDrop is pass 3 on one node: ca.pem becomes newCA alone, then etcd
// and the node's clients restart. Nothing happens when it already is and
// the pass finished.
func RotateDrop(c *cloudconfig.Cluster, newCA string) string {
	return render("rotate-drop.sh", struct {
		pass
		NewCA string
	}{newPass(c, newPassDone("drop", newCA, cloudconfig.CAFile(), clientsButFleet), false), strings.TrimRight(newCA, "\n")})
}
