package placement_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/deployctl/deployctl/registrar/placement"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/fleettest"
)

// Against the fleet fake (which follows fleetd 1.0.0's API): a launched
// unit is here on the machine fleet scheduled it to, elsewhere on every
// other; a unit fleet does not hold is nowhere. Over the node's unix
// socket as over HTTP.
func TestFleetSaysWhereTheUnitRuns(t *testing.T) {
	fs := fleettest.New(3)
	sock := filepath.Join(t.TempDir(), "fleet.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fs}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(fs)
	t.Cleanup(hs.Close)

	c, err := fleet.New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := &units.Unit{Name: "web@1.service"}
	u.Add("Service", "ExecStart", "/bin/true")
	if err := c.Create(ctx, u, fleet.StateLaunched); err != nil {
		t.Fatal(err)
	}
	on := fs.Unit("web@1.service").MachineID
	if on == "" {
		t.Fatal("the fake scheduled web@1 nowhere")
	}
	for _, ep := range []string{"unix://" + sock, hs.URL} {
		here, err := placement.NewFleet(ep, "web@1.service", on)
		if err != nil {
			t.Fatal(err)
		}
		if ok, where, err := here.Here(ctx); !ok || where != on || err != nil {
			t.Errorf("%s: on its machine: here=%v where=%q err=%v", ep, ok, where, err)
		}
		other, _ := placement.NewFleet(ep, "web@1.service", "0123456789abcdef0123456789abcdef")
		if ok, where, err := other.Here(ctx); ok || where != on || err != nil {
			t.Errorf("%s: on another machine: here=%v where=%q err=%v", ep, ok, where, err)
		}
		none, _ := placement.NewFleet(ep, "web@2.service", on)
		if ok, where, err := none.Here(ctx); ok || where != "" || err != nil {
			t.Errorf("%s: a unit fleet does not hold: here=%v where=%q err=%v", ep, ok, where, err)
		}
	}
}

// A fleet that cannot be reached is an error, not "elsewhere"; bad
// endpoints are refused with the form to use.
func TestFleetErrors(t *testing.T) {
	f, err := placement.NewFleet("unix://"+filepath.Join(t.TempDir(), "none.sock"), "web@1.service", "m")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ok, _, err := f.Here(ctx); ok || err == nil {
		t.Errorf("no fleet: here=%v err=%v", ok, err)
	}
	for _, ep := range []string{"", "unix://", "tcp://1.2.3.4:1"} {
		if _, err := placement.NewFleet(ep, "web@1.service", "m"); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	if _, err := placement.NewFleet("unix:///x.sock", "web@1.service", ""); err == nil {
		t.Error("no machine ID accepted")
	}
}
