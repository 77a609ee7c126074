package doapi_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/doapi"
	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"
)

// machines is a Machines that hands out addresses from 172.31.9.0/24 and
// records what it was asked.
type machines struct {
	mu        sync.Mutex
	booted    map[int]doapi.Machine
	removed   []int
	firewalls map[int][]doapi.Allow
	fail      error
	boots     int
}

func newMachines() *machines {
	return &machines{booted: map[int]doapi.Machine{}, firewalls: map[int][]doapi.Allow{}}
}

func (m *machines) Boot(ctx context.Context, mc doapi.Machine) (doapi.Address, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boots++
	if m.fail != nil {
		return doapi.Address{}, m.fail
	}
	m.booted[mc.ID] = mc
	return doapi.Address{IP: netip.MustParsePrefix(fmt.Sprintf("172.31.9.%d/24", 10+len(m.booted))), Gateway: netip.MustParseAddr("172.31.9.1")}, nil
}

func (m *machines) Remove(ctx context.Context, mc doapi.Machine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.booted, mc.ID)
	m.removed = append(m.removed, mc.ID)
	return nil
}

func (m *machines) Firewall(ctx context.Context, mc doapi.Machine, allow []doapi.Allow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.firewalls[mc.ID] = allow
	return nil
}

const token = "dop_v1_test"

type standIn struct {
	t      *testing.T
	m      *machines
	client *godo.Client
	url    string
	state  string
	stop   func()
}

// start serves a stand-in on state (a new one when empty) and runs its
// loop until the test ends or stop.
func start(t *testing.T, m *machines, state string) *standIn {
	t.Helper()
	if state == "" {
		state = filepath.Join(t.TempDir(), "state.json")
	}
	s, err := doapi.New(doapi.Config{StatePath: state, Token: token, Machines: m, VPCRange: netip.MustParsePrefix("172.31.9.0/24"),
		Resync: 50 * time.Millisecond, BootBackoff: time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done; srv.Close() })
	t.Cleanup(stop)
	c, err := godo.New(&http.Client{Transport: tokenTransport{}}, godo.SetBaseURL(srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	return &standIn{t: t, m: m, client: c, url: srv.URL, state: state, stop: stop}
}

type tokenTransport struct{}

func (tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultTransport.RoundTrip(r)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// pub is an operator's public key, made afresh.
var pub = func() string {
	k, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	sk, err := ssh.NewPublicKey(k)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
}()

// cluster makes what infra's program makes before its droplets: a key, a
// tag, a VPC and an available custom image.
func (si *standIn) cluster() (key *godo.Key, vpc *godo.VPC, img *godo.Image) {
	t, c := si.t, si.client
	key, _, err := c.Keys.Create(ctx(t), &godo.KeyCreateRequest{Name: "k", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Tags.Create(ctx(t), &godo.TagCreateRequest{Name: "deployctl-test"}); err != nil {
		t.Fatal(err)
	}
	vpc, _, err = c.VPCs.Create(ctx(t), &godo.VPCCreateRequest{Name: "deployctl-test", RegionSlug: "nyc3"})
	if err != nil {
		t.Fatal(err)
	}
	img, _, err = c.Images.Create(ctx(t), &godo.CustomImageCreateRequest{Name: "flatcar", Url: "https://example.invalid/flatcar.img", Region: "nyc3", Distribution: "CoreOS"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != "NEW" {
		t.Errorf("a new import is %q, want NEW", img.Status)
	}
	if img, _, err = c.Images.GetByID(ctx(t), img.ID); err != nil || img.Status != "available" {
		t.Fatalf("image after import: %+v %v", img, err)
	}
	return key, vpc, img
}

func (si *standIn) droplet(name string, img *godo.Image, key *godo.Key, vpc *godo.VPC, tags ...string) *godo.Droplet {
	si.t.Helper()
	d, _, err := si.client.Droplets.Create(ctx(si.t), &godo.DropletCreateRequest{Name: name, Region: "nyc3", Size: "s-2vcpu-4gb",
		Image: godo.DropletCreateImage{ID: img.ID}, SSHKeys: []godo.DropletCreateSSHKey{{Fingerprint: key.Fingerprint}},
		UserData: "#cloud-config\n", Tags: tags, VPCUUID: vpc.ID, Monitoring: true})
	if err != nil {
		si.t.Fatal(err)
	}
	return d
}

// active waits until droplet id is active, as the provider polls.
func (si *standIn) active(id int) *godo.Droplet {
	si.t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		d, _, err := si.client.Droplets.Get(ctx(si.t), id)
		if err != nil {
			si.t.Fatal(err)
		}
		if d.Status == "active" {
			return d
		}
		if d.Status != "new" {
			si.t.Fatalf("droplet %d is %q", id, d.Status)
		}
	}
	si.t.Fatalf("droplet %d did not become active", id)
	return nil
}

// The calls infra's program makes through the provider, in its order,
// answer in DigitalOcean's shapes, and a droplet is a machine booted from
// the user data sent, with the machine's address as public and private.
func TestDropletIsABootedMachine(t *testing.T) {
	si := start(t, newMachines(), "")
	key, vpc, img := si.cluster()
	if !strings.Contains(key.Fingerprint, ":") || len(key.Fingerprint) != 47 {
		t.Errorf("fingerprint %q is not MD5 colon-hex", key.Fingerprint)
	}
	if vpc.IPRange != "172.31.9.0/24" || vpc.URN != "do:vpc:"+vpc.ID {
		t.Errorf("VPC %+v", vpc)
	}
	d := si.droplet("node-1", img, key, vpc, "deployctl-test")
	if d.Status != "new" {
		t.Errorf("a new droplet is %q", d.Status)
	}
	d = si.active(d.ID)
	pubIP, _ := d.PublicIPv4()
	privIP, _ := d.PrivateIPv4()
	if pubIP != "172.31.9.11" || privIP != pubIP || d.Region.Slug != "nyc3" || d.Size.Slug != "s-2vcpu-4gb" || d.Size.PriceMonthly == 0 {
		t.Errorf("active droplet: public %q private %q region %+v size %+v", pubIP, privIP, d.Region, d.Size)
	}
	si.m.mu.Lock()
	mc := si.m.booted[d.ID]
	si.m.mu.Unlock()
	if mc.UserData != "#cloud-config\n" || len(mc.SSHKeys) != 1 || mc.SSHKeys[0] != pub {
		t.Errorf("machine booted from %+v", mc)
	}
	tag, _, err := si.client.Tags.Get(ctx(t), "deployctl-test")
	if err != nil || tag.Resources.Droplets.Count != 1 || tag.Resources.Images == nil {
		t.Errorf("tag %+v %v", tag, err)
	}
	proj, _, err := si.client.Projects.Create(ctx(t), &godo.CreateProjectRequest{Name: "p", Purpose: "Service or API", Environment: "Production"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := si.client.Projects.AssignResources(ctx(t), proj.ID, fmt.Sprintf("do:droplet:%d", d.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := si.client.Projects.Delete(ctx(t), proj.ID); err == nil || !strings.Contains(err.Error(), "412") {
		t.Errorf("deleting a project with resources: %v", err)
	}
	if _, err := si.client.Droplets.Delete(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := si.client.Droplets.Get(ctx(t), d.ID); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a destroyed droplet: %v", err)
	}
	if len(si.m.removed) != 1 || si.m.removed[0] != d.ID {
		t.Errorf("machines removed: %v", si.m.removed)
	}
	if _, err := si.client.Projects.Delete(ctx(t), proj.ID); err != nil {
		t.Errorf("deleting the emptied project: %v", err)
	}
}

// Bad requests get DigitalOcean's error shapes, which godo (and so the
// provider) turns into a message naming the field.
func TestBadRequestsNameTheField(t *testing.T) {
	si := start(t, newMachines(), "")
	key, vpc, img := si.cluster()
	_, _, err := si.client.Droplets.Create(ctx(t), &godo.DropletCreateRequest{Name: "n", Region: "mars1", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{ID: img.ID}})
	var er *godo.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != 422 || !strings.Contains(er.Message, `region "mars1"`) {
		t.Errorf("a bad region: %v", err)
	}
	for name, req := range map[string]*godo.DropletCreateRequest{
		"image":    {Name: "n", Region: "nyc3", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{Slug: "ubuntu-24-04-x64"}},
		"size":     {Name: "n", Region: "nyc3", Size: "huge", Image: godo.DropletCreateImage{ID: img.ID}},
		"ssh_keys": {Name: "n", Region: "nyc3", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{ID: img.ID}, SSHKeys: []godo.DropletCreateSSHKey{{ID: 1}}},
		"vpc_uuid": {Name: "n", Region: "nyc3", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{ID: img.ID}, VPCUUID: "nope"},
	} {
		_, _, err := si.client.Droplets.Create(ctx(t), req)
		if !errors.As(err, &er) || er.Response.StatusCode != 422 || !strings.Contains(er.Message, name) {
			t.Errorf("bad %s: %v", name, err)
		}
	}
	if _, _, err := si.client.Keys.Create(ctx(t), &godo.KeyCreateRequest{Name: "again", PublicKey: key.PublicKey}); err == nil {
		t.Error("the same key twice")
	}
	_, _, err = si.client.Firewalls.Create(ctx(t), &godo.FirewallRequest{Name: "f", InboundRules: []godo.InboundRule{{Protocol: "sctp", PortRange: "1", Sources: &godo.Sources{Addresses: []string{"0.0.0.0/0"}}}}})
	if err == nil || !strings.Contains(err.Error(), "inbound_rules[0].protocol") {
		t.Errorf("a bad protocol: %v", err)
	}
	resp, err := http.Get(si.url + "/v2/droplets")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %v %v", resp, err)
	}
	if _, err := si.client.VPCs.Delete(ctx(t), vpc.ID); err != nil {
		t.Errorf("deleting an empty VPC: %v", err)
	}
}

// Firewalls apply by tag and droplet: each machine gets the inbound rules
// that apply to it with tags resolved to the tagged droplets' addresses,
// again when a new droplet with the tag comes up; a machine no firewall
// applies to accepts everything.
func TestFirewallsResolveToMachines(t *testing.T) {
	si := start(t, newMachines(), "")
	key, vpc, img := si.cluster()
	d1 := si.active(si.droplet("node-1", img, key, vpc, "deployctl-test").ID)
	lone := si.active(si.droplet("lone", img, key, vpc).ID)
	fw, _, err := si.client.Firewalls.Create(ctx(t), &godo.FirewallRequest{Name: "deployctl-test", Tags: []string{"deployctl-test"},
		InboundRules: []godo.InboundRule{
			{Protocol: "tcp", PortRange: "22", Sources: &godo.Sources{Addresses: []string{"198.51.100.7/32", "::/0"}}},
			{Protocol: "tcp", PortRange: "2379-2380", Sources: &godo.Sources{Tags: []string{"deployctl-test"}}},
			{Protocol: "icmp", Sources: &godo.Sources{Tags: []string{"deployctl-test"}}},
		},
		OutboundRules: []godo.OutboundRule{{Protocol: "tcp", PortRange: "all", Destinations: &godo.Destinations{Addresses: []string{"0.0.0.0/0"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if fw.OutboundRules[0].PortRange != "0" || fw.InboundRules[2].PortRange != "0" || fw.Status != "succeeded" {
		t.Errorf("firewall as answered: %+v", fw)
	}
	d2 := si.active(si.droplet("node-2", img, key, vpc, "deployctl-test").ID)
	want := "tcp/22:198.51.100.7/32 tcp/2379-2380:172.31.9.11/32,172.31.9.13/32 icmp/:172.31.9.11/32,172.31.9.13/32"
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		si.m.mu.Lock()
		got1, got2, gotLone, applied := describe(si.m.firewalls[d1.ID]), describe(si.m.firewalls[d2.ID]), si.m.firewalls[lone.ID], len(si.m.firewalls)
		si.m.mu.Unlock()
		if got1 == want && got2 == want && applied == 3 && gotLone == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("firewalls: node-1 %q, node-2 %q, lone %v; want %q", got1, got2, gotLone, want)
		}
	}
}

func describe(allow []doapi.Allow) string {
	var parts []string
	for _, a := range allow {
		var src []string
		for _, p := range a.Sources {
			src = append(src, p.String())
		}
		parts = append(parts, a.Protocol+"/"+a.Ports+":"+strings.Join(src, ","))
	}
	return strings.Join(parts, " ")
}

// Everything survives a restart of the serving process, and a droplet
// whose boot had not finished is booted by the next one.
func TestStateSurvivesARestart(t *testing.T) {
	m := newMachines()
	m.fail = errors.New("no machine yet")
	si := start(t, m, "")
	key, vpc, img := si.cluster()
	d := si.droplet("node-1", img, key, vpc, "deployctl-test")
	si.stop()
	m.mu.Lock()
	m.fail = nil
	m.mu.Unlock()
	again := start(t, m, si.state)
	if got := again.active(d.ID); got.Name != "node-1" {
		t.Errorf("after the restart: %+v", got)
	}
	if _, _, err := again.client.Keys.GetByFingerprint(ctx(t), key.Fingerprint); err != nil {
		t.Errorf("the key after the restart: %v", err)
	}
	if _, _, err := again.client.VPCs.Get(ctx(t), vpc.ID); err != nil {
		t.Errorf("the VPC after the restart: %v", err)
	}
}

// A droplet whose machine fails to boot is tried again, and after three
// failures is "errored", which ends the provider's wait with an error.
func TestBootFailuresEndErrored(t *testing.T) {
	m := newMachines()
	m.fail = errors.New("docker: no such image")
	si := start(t, m, "")
	key, vpc, img := si.cluster()
	d := si.droplet("node-1", img, key, vpc)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, _, err := si.client.Droplets.Get(ctx(t), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == "errored" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("droplet is %q after 5 s of failing boots", got.Status)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.boots != 3 {
		t.Errorf("%d boots, want 3", m.boots)
	}
}

// A refused request changes nothing: tagging or assigning two droplets
// of which the second does not exist leaves the first as it was.
func TestRefusedRequestChangesNothing(t *testing.T) {
	si := start(t, newMachines(), "")
	key, vpc, img := si.cluster()
	d := si.active(si.droplet("node-1", img, key, vpc).ID)
	if _, err := si.client.Tags.TagResources(ctx(t), "deployctl-test", &godo.TagResourcesRequest{Resources: []godo.Resource{
		{ID: fmt.Sprint(d.ID), Type: godo.DropletResourceType}, {ID: "999999", Type: godo.DropletResourceType}}}); err == nil {
		t.Fatal("tagging a droplet that does not exist")
	}
	if got, _, _ := si.client.Droplets.Get(ctx(t), d.ID); len(got.Tags) != 0 {
		t.Errorf("a refused tagging tagged node-1: %v", got.Tags)
	}
	proj, _, err := si.client.Projects.Create(ctx(t), &godo.CreateProjectRequest{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := si.client.Projects.AssignResources(ctx(t), proj.ID, fmt.Sprintf("do:droplet:%d", d.ID), "do:droplet:999999"); err == nil {
		t.Fatal("assigning a droplet that does not exist")
	}
	if res, _, err := si.client.Projects.ListResources(ctx(t), proj.ID, nil); err != nil || len(res) != 0 {
		t.Errorf("a refused assignment moved resources: %v %v", res, err)
	}
}
