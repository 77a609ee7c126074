package doapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"

	"github.com/digitalocean/godo"
)

var firewallNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,254}$`)

// checkFirewall validates a firewall request and brings its ports to the
// API's form ("0" for every port, and for ICMP); the caller holds mu.
func (s *Server) checkFirewall(req *godo.FirewallRequest) error {
	if !firewallNameRe.MatchString(req.Name) {
		return unprocessable("name %q: a firewall's name is letters, digits, dots and dashes", req.Name)
	}
	for i := range req.InboundRules {
		in := &req.InboundRules[i]
		if in.Sources == nil {
			in.Sources = &godo.Sources{}
		}
		if err := checkRule("inbound_rules", i, &in.Protocol, &in.PortRange, (*godo.Destinations)(in.Sources)); err != nil {
			return err
		}
	}
	for i := range req.OutboundRules {
		out := &req.OutboundRules[i]
		if out.Destinations == nil {
			out.Destinations = &godo.Destinations{}
		}
		if err := checkRule("outbound_rules", i, &out.Protocol, &out.PortRange, out.Destinations); err != nil {
			return err
		}
	}
	for _, id := range req.DropletIDs {
		if _, ok := s.st.Droplets[id]; !ok {
			return unprocessable("droplet_ids: %d is not a droplet of this account", id)
		}
	}
	if err := checkTags(req.Tags); err != nil {
		return err
	}
	if req.Tags == nil {
		req.Tags = []string{}
	}
	return nil
}

var portsRe = regexp.MustCompile(`^(\d{1,5})(-(\d{1,5}))?$`)

func checkRule(field string, i int, proto, ports *string, targets *godo.Destinations) error {
	switch *proto {
	case "icmp":
		*ports = "0"
	case "tcp", "udp":
		if *ports == "all" || *ports == "" {
			*ports = "0"
		}
		if !portsRe.MatchString(*ports) {
			return unprocessable("%s[%d].ports %q: a port, a range N-M, or all", field, i, *ports)
		}
	default:
		return unprocessable("%s[%d].protocol %q: tcp, udp or icmp", field, i, *proto)
	}
	if len(targets.LoadBalancerUIDs)+len(targets.KubernetesIDs) > 0 {
		return unprocessable("%s[%d]: this stand-in has no load balancers or Kubernetes clusters", field, i)
	}
	if len(targets.Addresses)+len(targets.Tags)+len(targets.DropletIDs) == 0 {
		return unprocessable("%s[%d]: a rule needs addresses, tags or droplet_ids", field, i)
	}
	for _, a := range targets.Addresses {
		if _, err := parseSource(a); err != nil {
			return unprocessable("%s[%d]: address %q is not an IP address or CIDR", field, i, a)
		}
	}
	return nil
}

func parseSource(a string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(a); err == nil {
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

func (s *Server) createFirewall(r *http.Request) (int, any, error) {
	var req godo.FirewallRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if err := s.checkFirewall(&req); err != nil {
		return 0, nil, err
	}
	f := &godo.Firewall{ID: newUUID(), Name: req.Name, Status: "succeeded", InboundRules: req.InboundRules, OutboundRules: req.OutboundRules,
		DropletIDs: req.DropletIDs, Tags: req.Tags, Created: now(), PendingChanges: []godo.PendingChange{}}
	s.st.Firewalls[f.ID] = f
	return http.StatusAccepted, map[string]any{"firewall": f}, s.changed()
}

func (s *Server) listFirewalls(r *http.Request) (int, any, error) {
	fws := sortedValues(s.st.Firewalls)
	return http.StatusOK, page("firewalls", fws, len(fws)), nil
}

func (s *Server) getFirewall(r *http.Request) (int, any, error) {
	f, err := byKey(s.st.Firewalls, r.PathValue("id"))
	return http.StatusOK, map[string]any{"firewall": f}, err
}

func (s *Server) updateFirewall(r *http.Request) (int, any, error) {
	var req godo.FirewallRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	f, err := byKey(s.st.Firewalls, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := s.checkFirewall(&req); err != nil {
		return 0, nil, err
	}
	f.Name, f.InboundRules, f.OutboundRules, f.DropletIDs, f.Tags = req.Name, req.InboundRules, req.OutboundRules, req.DropletIDs, req.Tags
	return http.StatusOK, map[string]any{"firewall": f}, s.changed()
}

func (s *Server) deleteFirewall(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if _, err := byKey(s.st.Firewalls, id); err != nil {
		return 0, nil, err
	}
	delete(s.st.Firewalls, id)
	return http.StatusNoContent, nil, s.changed()
}

// allowFor resolves the inbound rules of every firewall that applies to d
// (by droplet id or tag) to addresses: nil when none applies (the droplet
// accepts everything), as on DigitalOcean. Tags and droplet ids stand for
// the addresses of the active droplets they name; IPv6 sources are left
// out (the machines have IPv4 only). The caller holds mu.
func (s *Server) allowFor(d *droplet) []Allow {
	var allow []Allow
	applies := false
	for _, f := range sortedValues(s.st.Firewalls) {
		if !d.namedBy(f.DropletIDs, f.Tags) {
			continue
		}
		applies = true
		for _, in := range f.InboundRules {
			a := Allow{Protocol: in.Protocol, Ports: in.PortRange, Sources: []netip.Prefix{}}
			if a.Ports == "0" || a.Protocol == "icmp" {
				a.Ports = ""
			}
			a.Sources = append(a.Sources, s.sources(in.Sources)...)
			allow = append(allow, a)
		}
	}
	if !applies {
		return nil
	}
	if allow == nil {
		allow = []Allow{}
	}
	return allow
}

func (s *Server) sources(src *godo.Sources) []netip.Prefix {
	var out []netip.Prefix
	if src == nil {
		return nil
	}
	for _, a := range src.Addresses {
		if p, err := parseSource(a); err == nil && p.Addr().Is4() {
			out = append(out, p)
		}
	}
	for _, d := range sortedValues(s.st.Droplets) {
		ip, ok := d.address()
		if !ok {
			continue
		}
		if d.namedBy(src.DropletIDs, src.Tags) {
			out = append(out, netip.PrefixFrom(ip, 32))
		}
	}
	return out
}

// allowKey is a fingerprint of an allow list, to apply only changes
// ("open" for no firewall, which is not the same as no rule).
func allowKey(allow []Allow) string {
	if allow == nil {
		return "open"
	}
	return fmt.Sprint(allow)
}
