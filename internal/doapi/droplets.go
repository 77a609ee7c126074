package doapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/godo"
)

// dropletCreate is POST /v2/droplets as the provider sends it: image is an
// id or a slug, each SSH key an id or a fingerprint.
type dropletCreate struct {
	Name       string            `json:"name"`
	Names      []string          `json:"names"`
	Region     string            `json:"region"`
	Size       string            `json:"size"`
	Image      json.RawMessage   `json:"image"`
	SSHKeys    []json.RawMessage `json:"ssh_keys"`
	Backups    bool              `json:"backups"`
	IPv6       bool              `json:"ipv6"`
	Monitoring bool              `json:"monitoring"`
	UserData   string            `json:"user_data"`
	Volumes    []json.RawMessage `json:"volumes"`
	Tags       []string          `json:"tags"`
	VPCUUID    string            `json:"vpc_uuid"`
}

var (
	hostnameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$`)
	sizeRe     = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*-(\d+)vcpu-(\d+)(gb|mb)(-[a-z0-9]+)*$`)
)

// maxUserData is DigitalOcean's limit on user data.
const maxUserData = 64 << 10

// size is a size slug's shape: vCPUs and memory from the slug, disk and
// prices as DigitalOcean's basic droplets scale.
func size(slug, region string) (*godo.Size, error) {
	m := sizeRe.FindStringSubmatch(slug)
	if m == nil {
		return nil, unprocessable("size %q is not a droplet size slug (such as s-2vcpu-4gb)", slug)
	}
	vcpus, _ := strconv.Atoi(m[2])
	mem, _ := strconv.Atoi(m[3])
	if m[4] == "gb" {
		mem *= 1024
	}
	gb := float64(mem) / 1024
	return &godo.Size{Slug: slug, Memory: mem, Vcpus: vcpus, Disk: max(10, int(gb*20)), Transfer: max(0.5, gb),
		PriceMonthly: 6 * gb, PriceHourly: 6 * gb / 672, Regions: []string{region}, Available: true}, nil
}

// checkDroplet validates a create; the caller holds mu.
func (s *Server) checkDroplet(req *dropletCreate) (*godo.Image, []string, error) {
	switch {
	case len(req.Names) > 0:
		return nil, nil, unprocessable("names: this stand-in creates one droplet per request (name)")
	case !hostnameRe.MatchString(req.Name):
		return nil, nil, unprocessable("name %q: a droplet's name is a hostname (letters, digits, dots and dashes)", req.Name)
	case len(req.UserData) > maxUserData:
		return nil, nil, unprocessable("user_data is %d bytes; at most %d", len(req.UserData), maxUserData)
	case len(req.Volumes) > 0:
		return nil, nil, unprocessable("volumes: this stand-in has no volumes")
	}
	if err := checkRegion("region", req.Region); err != nil {
		return nil, nil, err
	}
	var id int
	if json.Unmarshal(req.Image, &id) != nil {
		return nil, nil, unprocessable("image %s: this stand-in boots custom images only (an image id from POST /v2/images)", req.Image)
	}
	img, ok := s.st.Images[id]
	if !ok || img.Status != "available" {
		return nil, nil, unprocessable("image %d is not an available image of this account", id)
	}
	if !slices.Contains(img.Regions, req.Region) {
		return nil, nil, unprocessable("image %d is not available in region %s", id, req.Region)
	}
	if v, ok := s.st.VPCs[req.VPCUUID]; req.VPCUUID != "" && (!ok || v.RegionSlug != req.Region) {
		return nil, nil, unprocessable("vpc_uuid %q is not a VPC of this account in region %s", req.VPCUUID, req.Region)
	}
	var keys []string
	for _, raw := range req.SSHKeys {
		k, err := s.key(strings.Trim(string(raw), `"`)) // an id, or a fingerprint as a JSON string
		if err != nil {
			return nil, nil, unprocessable("ssh_keys: %s is not a key of this account (an id or a fingerprint)", raw)
		}
		keys = append(keys, k.PublicKey)
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, nil, err
	}
	return img, keys, nil
}

func (s *Server) createDroplet(r *http.Request) (int, any, error) {
	var req dropletCreate
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	sz, err := size(req.Size, req.Region)
	if err != nil {
		return 0, nil, err
	}
	img, keys, err := s.checkDroplet(&req)
	if err != nil {
		return 0, nil, err
	}
	for _, t := range req.Tags {
		s.st.Tags[t] = true // a droplet's create makes its tags, as the API does
	}
	features := []string{"private_networking"}
	if req.Monitoring {
		features = append(features, "monitoring")
	}
	if req.Backups {
		features = append(features, "backups")
	}
	imgCopy := *img
	d := &droplet{UserData: req.UserData, SSHKeys: keys, Droplet: godo.Droplet{
		ID: s.st.nextID(), Name: req.Name, Memory: sz.Memory, Vcpus: sz.Vcpus, Disk: sz.Disk,
		Region: &godo.Region{Slug: req.Region, Name: req.Region, Sizes: []string{req.Size}, Available: true, Features: []string{"private_networking", "monitoring"}},
		Image:  &imgCopy, Size: sz, SizeSlug: req.Size, Features: features, Status: "new", Networks: &godo.Networks{},
		Created: now(), Tags: req.Tags, VolumeIDs: []string{}, VPCUUID: req.VPCUUID,
	}}
	s.st.Droplets[d.Droplet.ID] = d
	return http.StatusAccepted, map[string]any{"droplet": &d.Droplet}, s.changed()
}

func (s *Server) listDroplets(r *http.Request) (int, any, error) {
	tag := r.URL.Query().Get("tag_name")
	var out []*godo.Droplet
	for _, d := range sortedValues(s.st.Droplets) {
		if tag == "" || slices.Contains(d.Droplet.Tags, tag) {
			out = append(out, &d.Droplet)
		}
	}
	return http.StatusOK, page("droplets", out, len(out)), nil
}

func (s *Server) getDroplet(r *http.Request) (int, any, error) {
	d, err := byID(r, s.st.Droplets)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"droplet": &d.Droplet}, nil
}

// deleteDroplet stops a boot under way, removes the machine and then the
// droplet: the next GET answers 404, which the provider waits for.
func (s *Server) deleteDroplet(r *http.Request) (int, any, error) {
	d, err := byID(r, s.st.Droplets)
	if err != nil {
		return 0, nil, err
	}
	id := d.Droplet.ID
	s.stopBoot(id)
	rctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := s.cfg.Machines.Remove(rctx, d.machine()); err != nil {
		return 0, nil, fmt.Errorf("removing droplet %d's machine: %w", id, err)
	}
	delete(s.st.Droplets, id)
	for _, f := range s.st.Firewalls {
		f.DropletIDs = slices.DeleteFunc(f.DropletIDs, func(x int) bool { return x == id })
	}
	urn := fmt.Sprintf("do:droplet:%d", id)
	for _, p := range s.st.Projects {
		p.Resources = slices.DeleteFunc(p.Resources, func(u string) bool { return u == urn })
	}
	s.cfg.Log.Info("droplet destroyed", "id", id, "name", d.Droplet.Name)
	return http.StatusNoContent, nil, s.changed()
}

func (d *droplet) machine() Machine {
	return Machine{ID: d.Droplet.ID, Name: d.Droplet.Name, Region: d.Droplet.Region.Slug, UserData: d.UserData, SSHKeys: d.SSHKeys}
}

// address is the droplet's address, once it is active.
func (d *droplet) address() (netip.Addr, bool) {
	if d.Droplet.Networks == nil {
		return netip.Addr{}, false
	}
	for _, n := range d.Droplet.Networks.V4 {
		if a, err := netip.ParseAddr(n.IPAddress); err == nil && n.Type == "private" {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// up records a booted droplet: active, its address DigitalOcean's public
// and private one alike.
func (d *droplet) up(a Address) {
	netmask := net.IP(net.CIDRMask(a.IP.Bits(), 32)).String()
	d.Droplet.Status, d.Failures = "active", 0
	d.Droplet.Networks = &godo.Networks{V4: []godo.NetworkV4{
		{IPAddress: a.IP.Addr().String(), Netmask: netmask, Gateway: a.Gateway.String(), Type: "public"},
		{IPAddress: a.IP.Addr().String(), Netmask: netmask, Gateway: a.Gateway.String(), Type: "private"},
	}}
}

// namedBy reports whether ids or tags name d, as a firewall's droplets
// and tags, or a rule's sources, do.
func (d *droplet) namedBy(ids []int, tags []string) bool {
	return slices.Contains(ids, d.Droplet.ID) || slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(d.Droplet.Tags, t) })
}
