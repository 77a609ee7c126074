package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/fleettest"
)

// recorder wraps the fake fleetd and keeps the raw request URIs.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	uris []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.uris = append(r.uris, req.Method+" "+req.RequestURI)
	r.mu.Unlock()
	r.h.ServeHTTP(w, req)
}

func newFleet(t *testing.T, machines int) (*fleettest.Server, *fleet.Client, *recorder) {
	t.Helper()
	fs := fleettest.New(machines)
	rec := &recorder{h: fs}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	c, err := fleet.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return fs, c, rec
}

func unit(name string, opts ...string) *units.Unit {
	u := &units.Unit{Name: name}
	u.Add("Service", "ExecStart", "/bin/sleep 1000")
	for i := 0; i+1 < len(opts); i += 2 {
		u.Add(units.XFleet, opts[i], opts[i+1])
	}
	return u
}

func TestPaginationExactMultiple(t *testing.T) {
	fs, c, rec := newFleet(t, 1)
	fs.TokenLimit = 3
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if err := c.Create(ctx, unit(fmt.Sprintf("u%d.service", i)), ""); err != nil {
			t.Fatal(err)
		}
	}
	us, err := c.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 6 {
		t.Fatalf("listed %d units, want 6", len(us))
	}
	// Three pages: 3, 3 and the empty one fleetd sends after an exact multiple.
	pages := 0
	for _, u := range rec.uris {
		if strings.HasPrefix(u, "GET /fleet/v1/units?") {
			pages++
		}
	}
	if pages != 3 {
		t.Fatalf("%d page requests, want 3: %v", pages, rec.uris)
	}
	if us[0].DesiredState != "inactive" || us[0].MachineID != "" {
		t.Fatalf("new unit without desiredState: %+v", us[0])
	}
}

func TestEmptyListIsEmptyObject(t *testing.T) {
	fs := fleettest.New(1)
	ts := httptest.NewServer(fs)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/fleet/v1/units")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	if strings.TrimSpace(b.String()) != "{}" {
		t.Fatalf("empty list = %q, want {}", b.String())
	}
}

func TestFleetSemanticsAndClientGuards(t *testing.T) {
	fs, c, rec := newFleet(t, 2)
	ctx := context.Background()
	tpl := unit("web@.service", "Conflicts", "web@*.service")
	if err := c.Create(ctx, tpl, fleet.StateLaunched); err == nil {
		t.Fatal("client created a launched template")
	}
	if err := c.Create(ctx, tpl, ""); err != nil {
		t.Fatal(err)
	}
	// Invalid desired states never reach fleetd.
	before := fs.Count("PUT unit")
	if err := c.SetState(ctx, "web@.service", "running"); err == nil {
		t.Fatal("invalid state accepted")
	}
	if err := c.SetState(ctx, "web@.service", fleet.StateLaunched); err == nil {
		t.Fatal("launching a template accepted")
	}
	if fs.Count("PUT unit") != before {
		t.Fatal("a refused request was sent to fleet")
	}
	// start web@1 = GET template + PUT its options under the instance name.
	if err := c.StartInstance(ctx, "web@1.service"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartInstance(ctx, "web@2.service"); err != nil {
		t.Fatal(err)
	}
	i1, i2 := fs.Unit("web@1.service"), fs.Unit("web@2.service")
	if i1 == nil || i1.DesiredState != "launched" || i1.MachineID == "" || len(i1.Options) != len(tpl.Options) {
		t.Fatalf("instance 1: %+v", i1)
	}
	if i1.MachineID == i2.MachineID {
		t.Fatal("Conflicts ignored: both instances on one machine")
	}
	found := false
	for _, u := range rec.uris {
		if strings.HasPrefix(u, "PUT /fleet/v1/units/web%401.service?alt=json") {
			found = true
		}
	}
	if !found {
		t.Fatalf("@ not escaped as %%40 or alt=json missing: %v", rec.uris)
	}
	states, err := c.States(ctx, "", "web@1.service")
	if err != nil || len(states) != 1 || states[0].SystemdActiveState != "active" {
		t.Fatalf("states %+v %v", states, err)
	}
	// Errors carry fleet's code and message.
	_, err = c.Unit(ctx, "nope.service")
	var fe *fleet.Error
	if !errors.Is(err, fleet.ErrNotFound) || !errors.As(err, &fe) || fe.Code != 404 {
		t.Fatalf("missing unit: %v", err)
	}
	if err := c.Destroy(ctx, "nope.service"); err != nil {
		t.Fatalf("destroying a missing unit: %v", err)
	}
	if err := c.Destroy(ctx, "web@2.service"); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Machines(ctx)
	if err != nil || len(ms) != 2 {
		t.Fatalf("machines %v %v", ms, err)
	}
}

func TestServerErrorsAsFleetd(t *testing.T) {
	fs := fleettest.New(1)
	ts := httptest.NewServer(fs)
	defer ts.Close()
	put := func(path, ctype, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		sb.Write(buf[:n])
		return resp.StatusCode, sb.String()
	}
	opts := `"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]`
	cases := []struct {
		path, ctype, body string
		code              int
		msg               string
	}{
		{"/fleet/v1/units/a.service", "", `{` + opts + `}`, 415, ""},
		{"/fleet/v1/units/a.service", "application/json", `{`, 400, ""},
		{"/fleet/v1/units/a.service", "application/json", `{"desiredState":"launched"}`, 409, "unit does not exist and options field empty"},
		{"/fleet/v1/units/a.service", "application/json", `{"name":"b.service",` + opts + `}`, 400, "does not match"},
		{"/fleet/v1/units/a.exe", "application/json", `{` + opts + `}`, 400, ""},
		{"/fleet/v1/units/a.service", "application/json", `{` + opts + `}`, 201, ""},
		{"/v1-alpha/units/a.service", "application/json", `{` + opts + `}`, 409, "must provide DesiredState"},
		{"/v1-alpha/units/a.service", "application/json", `{"desiredState":"loaded",` + opts + `}`, 204, ""},
		{"/fleet/v1/units/a.service", "application/json", `{}`, 409, "must provide DesiredState"},
		{"/fleet/v1/units/t@.service", "application/json", `{` + opts + `}`, 201, ""},
		{"/fleet/v1/units/t@.service", "application/json", `{"desiredState":"launched"}`, 400, "cannot activate template"},
		{"/fleet/v1/units/g.service", "application/json", `{"options":[{"section":"X-Fleet","name":"Global","value":"true"},{"section":"X-Fleet","name":"MachineOf","value":"a.service"}]}`, 400, "Global"},
	}
	for _, c := range cases {
		code, body := put(c.path, c.ctype, c.body)
		if code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("PUT %s %s: %d %s; want %d %q", c.path, c.body, code, body, c.code, c.msg)
		}
		if code >= 400 && !strings.Contains(body, `"error":{"code":`) {
			t.Errorf("error body not fleet's JSON: %s", body)
		}
	}
	resp, _ := http.Post(ts.URL+"/fleet/v1/units", "application/json", nil)
	if resp.StatusCode != 405 {
		t.Errorf("POST /units = %d, want 405", resp.StatusCode)
	}
	resp.Body.Close()
	// fleetd drops the connection on /state/{name}.
	if _, err := http.Get(ts.URL + "/fleet/v1/state/a.service"); err == nil {
		t.Error("GET /state/{name} answered; fleetd drops the connection")
	}
}

func TestUnixSocketEndpoint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fleet.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fleettest.New(1)}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := fleet.New("unix://"+sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Machines(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.New("ftp://x", nil); err == nil {
		t.Fatal("ftp endpoint accepted")
	}
	bad, _ := fleet.New("http://127.0.0.1:1", nil)
	if _, err := bad.Units(context.Background()); err == nil || !strings.Contains(err.Error(), "is fleetd reachable") {
		t.Fatalf("unreachable fleet: %v", err)
	}
}
