package announce

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Placement says where the scheduler (fleet) runs the instance; package
// placement's Fleet is the one the sidekick uses.
type Placement interface {
	// Here reports whether the instance is scheduled on this machine, and
	// on which it is ("" when on none).
	Here(ctx context.Context) (here bool, where string, err error)
}

// place is what the announcer last heard from its Placement.
type place int

const (
	placeUnknown   place = iota // not asked yet, fleet did not answer, or it schedules the instance nowhere
	placeHere                   // fleet schedules the instance here
	placeElsewhere              // fleet schedules it on another machine
)

// placeResult is one answer of the Placement, to the recheck numbered gen.
type placeResult struct {
	gen   uint64
	here  bool
	where string
	err   error
}

// placementLoop asks the Placement at once, then every PlacementInterval
// (every placementRetry at most while the answer is not "here": a new
// copy registers as soon as fleet says so) and whenever a recheck is
// requested on req, and sends each answer on out, tagged with the last
// recheck it has seen. It returns when ctx ends.
func (a *announcer) placementLoop(ctx context.Context, clk clock, req <-chan uint64, out chan<- placeResult) {
	var gen uint64
	for {
		pctx, cancel := context.WithTimeout(ctx, a.opTimeout())
		here, where, err := a.Placement.Here(pctx)
		cancel()
		select {
		case out <- placeResult{gen, here, where, err}:
		case <-ctx.Done():
			return
		}
		wait := a.PlacementInterval
		if !here || err != nil {
			wait = min(wait, placementRetry)
		}
		select {
		case <-ctx.Done():
			return
		case gen = <-req:
		case <-clk.After(wait):
		}
	}
}

// placementRetry is how soon fleet is asked again when it did not say
// "here".
const placementRetry = time.Second

// recheckPlacement forgets what fleet said and asks again: after a lost
// lease or a key another writer changed, the instance may have been moved
// (a partition healing), so only a fresh "here" registers it again.
func (a *announcer) recheckPlacement() {
	if a.Placement == nil {
		return
	}
	a.placeGen++
	a.place = placeUnknown
	select { // the latest request wins
	case <-a.placeReq:
	default:
	}
	a.placeReq <- a.placeGen
}

// onPlacement takes an answer; one to a recheck older than the last is
// stale and dropped.
func (a *announcer) onPlacement(r placeResult) {
	if r.gen < a.placeGen {
		return
	}
	a.placeWhere = r.where
	switch {
	case r.err != nil:
		a.place = placeUnknown
		if a.lastState != "placement unknown" && !a.registered() {
			a.log.Warn("fleet does not say where the instance runs; not registering until it does", "err", r.err)
		}
	case r.here:
		a.place = placeHere
	case r.where != "":
		a.place = placeElsewhere
	default: // scheduled nowhere, or no such unit
		a.place = placeUnknown
	}
}

// placed reports whether the placement lets the instance be registered:
// always without a Placement; on "here"; never on another machine; and,
// when fleet does not answer or schedules it nowhere, only if it is
// registered already (a new registration waits for "here").
func (a *announcer) placed() bool {
	if a.Placement == nil {
		return true
	}
	switch a.place {
	case placeHere:
		return true
	case placeElsewhere:
		a.state("placed elsewhere", "fleet schedules it on machine "+a.placeWhere+"; not registering this copy")
		return false
	}
	if a.registered() {
		return true
	}
	a.state("placement unknown", "waiting for fleet to say the instance runs here")
	return false
}

// defaultPlacementInterval is how often fleet is asked.
const defaultPlacementInterval = 5 * time.Second

// errHeld: the key holds another copy's registration.
var errHeld = errors.New("the key holds another copy's registration")

// claim is the condition of a put when fleet arbitrates (a Placement):
// the key absent, or unchanged since it was read holding this copy's
// address or lease. Another copy's live registration is never
// overwritten (errHeld): right after a partition heals, fleet on the node
// cut off may still answer "here" from its member's stale view, and the
// copy fleet runs elsewhere holds the key by then. Without a Placement
// the put is unconditional (a key another writer changed is put back).
func (a *announcer) claim(ctx context.Context) ([]clientv3.Cmp, error) {
	if a.Placement == nil {
		return nil, nil
	}
	gctx, cancel := context.WithTimeout(ctx, a.opTimeout())
	resp, err := a.Client.Get(gctx, a.Key)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.Key, err)
	}
	if len(resp.Kvs) == 0 {
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(a.Key), "=", 0)}, nil
	}
	kv := resp.Kvs[0]
	if string(kv.Value) != a.addr && clientv3.LeaseID(kv.Lease) != a.lease {
		return nil, errHeld
	}
	return []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(a.Key), "=", kv.ModRevision)}, nil
}
