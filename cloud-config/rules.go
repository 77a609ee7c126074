package cloudconfig

import (
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// The rules beyond types: coreos-cloudinit's value checks and deployctl's
// own (private network, consistent etcd endpoints, TLS for every client).

func (v *validator) structRules(n *yaml.Node, t reflect.Type, path string) {
	switch t {
	case reflect.TypeOf(Config{}):
		if mh, node := value(n, "manage_etc_hosts"); node != nil && node.Tag != "!!null" && mh != "localhost" {
			v.add(node.Line, KindError, "invalid value %s (manage_etc_hosts only takes \"localhost\")", mh)
		}
	case reflect.TypeOf(File{}):
		p, pn := value(n, "path")
		if pn == nil || p == "" {
			v.add(n.Line, KindError, "write_files entry has no path")
		} else {
			if p == "/usr" || strings.HasPrefix(p, "/usr/") {
				v.add(pn.Line, KindError, "file cannot be written to a read-only filesystem")
			}
			if !strings.HasPrefix(p, "/") {
				v.add(pn.Line, KindError, "path %q must be absolute", p)
			}
		}
		enc, en := value(n, "encoding")
		content, cn := value(n, "content")
		if en != nil && enc != "" {
			if _, err := decodeContent(content, enc); err != nil {
				line := en.Line
				if cn != nil {
					line = cn.Line // the bad value is there
				}
				v.add(line, KindError, "content cannot be decoded as %q (encoding on line %d)", enc, en.Line)
			}
		}
	case reflect.TypeOf(Etcd{}), reflect.TypeOf(Etcd2{}):
		if d, dn := value(n, "discovery"); dn != nil && d != "" {
			if _, err := url.ParseRequestURI(d); err != nil {
				v.add(dn.Line, KindWarning, "discovery URL is not valid")
			}
		}
		if t == reflect.TypeOf(Etcd2{}) {
			for _, k := range []string{"listen_peer_urls", "initial_advertise_peer_urls", "advertise_client_urls"} {
				if s, sn := value(n, k); sn != nil && strings.Contains(s, "$public_ipv4") {
					v.add(sn.Line, KindError, "%s uses $public_ipv4: etcd traffic belongs on the private network ($private_ipv4)", k)
				}
			}
			if s, sn := value(n, "listen_client_urls"); sn != nil {
				v.etcdClientURLs = append(v.etcdClientURLs, located{sn.Line, s})
			}
		}
	case reflect.TypeOf(Fleet{}):
		if s, sn := value(n, "etcd_servers"); sn != nil && s != "" {
			v.consumers = append(v.consumers, consumer{sn.Line, "coreos.fleet.etcd_servers", s, hasCertKeys(n)})
		}
		if s, sn := value(n, "public_ip"); sn != nil && strings.Contains(s, "$public_ipv4") {
			v.add(sn.Line, KindWarning, "fleet public_ip uses $public_ipv4; fleet's traffic belongs on $private_ipv4")
		}
	case reflect.TypeOf(Flannel{}):
		if s, sn := value(n, "etcd_endpoints"); sn != nil && s != "" {
			v.consumers = append(v.consumers, consumer{sn.Line, "coreos.flannel.etcd_endpoints", s, hasCertKeys(n)})
		}
		for _, k := range []string{"interface", "public_ip"} {
			if s, sn := value(n, k); sn != nil && strings.Contains(s, "$public_ipv4") {
				v.add(sn.Line, KindError, "flannel %s uses $public_ipv4: vxlan traffic belongs on the private network ($private_ipv4)", k)
			}
		}
	case reflect.TypeOf(Locksmith{}):
		if s, sn := value(n, "endpoint"); sn != nil && s != "" {
			v.consumers = append(v.consumers, consumer{sn.Line, "coreos.locksmith.endpoint", s, hasCertKeys(n)})
		}
	case reflect.TypeOf(Unit{}):
		v.unitRules(n)
	}
}

func (v *validator) unitRules(n *yaml.Node) {
	name, nn := value(n, "name")
	if nn == nil || name == "" {
		v.add(n.Line, KindError, "unit has no name; coreos-cloudinit skips it")
		return
	}
	content, cn := value(n, "content")
	_, dn := value(n, "drop_ins")
	_, mn := value(n, "mask")
	hasDropIns := dn != nil && dn.Kind == yaml.SequenceNode && len(dn.Content) > 0
	if content == "" && !hasDropIns && mn == nil && !FlatcarUnits[name] {
		v.add(nn.Line, KindError, "unit %q has no content and is not a unit Flatcar ships", name)
	}
	if content == "" && hasDropIns && !FlatcarUnits[name] {
		v.add(nn.Line, KindWarning, "unit %q only has drop-ins and is not a unit Flatcar ships", name)
	}
	check := func(text string, node *yaml.Node) {
		env := envs(text, node)
		fleetCert := env["FLEET_ETCD_CAFILE"].val != "" && env["FLEET_ETCD_CERTFILE"].val != "" && env["FLEET_ETCD_KEYFILE"].val != ""
		for i, l := range strings.Split(text, "\n") {
			if m := curlEtcd.FindStringSubmatch(l); m != nil {
				cert := strings.Contains(l, "--cacert ") && strings.Contains(l, "--cert ") && strings.Contains(l, "--key ")
				v.consumers = append(v.consumers, consumer{contentLine(node, i), "curl in " + name, m[1], cert})
			}
		}
		for k, l := range env {
			switch {
			case strings.HasPrefix(k, "ETCD_") && strings.Contains(k, "URLS") && strings.Contains(l.val, "$public_ipv4"):
				v.add(l.line, KindError, "%s uses $public_ipv4: etcd traffic belongs on the private network ($private_ipv4)", k)
			case k == "ETCD_LISTEN_CLIENT_URLS":
				v.etcdClientURLs = append(v.etcdClientURLs, l)
			case k == "FLEET_ETCD_SERVERS":
				v.consumers = append(v.consumers, consumer{l.line, "FLEET_ETCD_SERVERS", l.val, fleetCert})
			case k == "ETCD_CLIENT_CERT_AUTH" && isTrue(l.val):
				l := l
				v.certAuth = &l
			case k == "FLEET_PUBLIC_IP" && strings.Contains(l.val, "$public_ipv4"):
				v.add(l.line, KindWarning, "FLEET_PUBLIC_IP uses $public_ipv4; fleet's traffic belongs on $private_ipv4")
			}
		}
	}
	if cn != nil {
		check(content, cn)
	}
	if hasDropIns {
		for _, d := range dn.Content {
			dname, dnn := value(d, "name")
			c, dc := value(d, "content")
			if dnn == nil || dname == "" {
				v.add(d.Line, KindError, "drop-in of %q has no name", name)
			} else if !strings.HasSuffix(dname, ".conf") {
				v.add(dnn.Line, KindError, "drop-in %q of %q must end in .conf or systemd ignores it", dname, name)
			}
			if dc != nil {
				check(c, dc)
			}
		}
	}
}

// curlEtcd finds an etcd URL a unit's curl call talks to.
var curlEtcd = regexp.MustCompile(`\bcurl\b.*?\b(https?://[^/\s]+:2379)`)

// hasCertKeys reports whether a coreos.* section gives etcd_cafile,
// etcd_certfile and etcd_keyfile.
func hasCertKeys(n *yaml.Node) bool {
	for _, k := range []string{"etcd_cafile", "etcd_certfile", "etcd_keyfile"} {
		if s, _ := value(n, k); s == "" {
			return false
		}
	}
	return true
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// crossChecks: every consumer of etcd uses a port (and scheme) etcd
// listens on.
func (v *validator) crossChecks() {
	if len(v.etcdClientURLs) == 0 && v.certAuth == nil {
		return
	}
	ports := map[string]bool{}
	schemes := map[string]bool{}
	var listed []string
	for _, l := range v.etcdClientURLs {
		for _, raw := range strings.Split(l.val, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil || u.Port() == "" {
				v.add(l.line, KindError, "etcd client URL %q is not scheme://host:port", raw)
				continue
			}
			ports[u.Port()] = true
			schemes[u.Scheme] = true
			listed = append(listed, u.Scheme+"/"+u.Port())
		}
	}
	for _, c := range v.consumers {
		if v.certAuth != nil && !c.cert {
			v.add(c.line, KindError, "%s reaches etcd without a client certificate, but etcd requires one (ETCD_CLIENT_CERT_AUTH on line %d): give it the CA, certificate and key", c.what, v.certAuth.line)
		}
		for _, raw := range strings.Split(c.urls, ",") {
			raw = strings.TrimSpace(raw)
			u, err := url.Parse(raw)
			if err != nil || u.Port() == "" {
				v.add(c.line, KindError, "%s: %q is not scheme://host:port", c.what, raw)
				continue
			}
			if !ports[u.Port()] || !schemes[u.Scheme] {
				v.add(c.line, KindError, "%s: %s does not match a client URL etcd listens on (%s)", c.what, raw, strings.Join(listed, ", "))
			}
		}
	}
}
