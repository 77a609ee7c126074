package deployspec

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
	"gopkg.in/yaml.v3"
)

// dockerNetwork is a Docker network's name (not container:NAME, which
// shares another container's address).
var dockerNetwork = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (p *parser) service(name string, k, v *yaml.Node, field string) *Service {
	s := &Service{Name: name, Line: k.Line, Instances: Defaults.Instances, TTL: Defaults.TTL, Network: Defaults.Network}
	start := len(p.fields)
	defer func() { s.Fields = append([]Field(nil), p.fields[start:]...) }()
	var instancesNode, portNode, imageNode, machineNode, globalNode, networkNode *yaml.Node
	p.mapping(v, field, map[string]func(k, v *yaml.Node){
		"image": func(_, v *yaml.Node) {
			imageNode = v
			if img, ok := p.str(v, field+".image"); ok {
				if !imageRef.MatchString(img) {
					p.errf(v, field+".image", "%q is not an image reference like example/someapp:1.4", img)
				}
				s.Image = img
			}
		},
		"port": func(_, v *yaml.Node) {
			portNode = v
			s.Port, _ = p.integer(v, field+".port", 1, 65535)
		},
		"instances": func(_, v *yaml.Node) {
			instancesNode = v
			if n, ok := p.integer(v, field+".instances", 1, 1000); ok {
				s.Instances = n
			} else if v.Value == "0" {
				p.errs = p.errs[:len(p.errs)-1]
				p.errf(v, field+".instances", "must be at least 1; to stop a service, remove it or destroy its units")
			}
		},
		"env": func(_, v *yaml.Node) { s.Env = p.pairs(v, field+".env", envKey, "environment variable") },
		"command": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errf(v, field+".command", "must be a list of arguments")
				return
			}
			for _, a := range v.Content {
				if arg, ok := p.str(a, field+".command"); ok {
					s.Command = append(s.Command, arg)
				}
			}
		},
		"health": func(_, v *yaml.Node) { s.Health = p.health(v, field) },
		"spread": func(_, v *yaml.Node) { s.Spread, _ = p.boolean(v, field+".spread") },
		"ttl": func(_, v *yaml.Node) {
			if d, ok := p.duration(v, field+".ttl"); ok {
				if d < 2*time.Second {
					p.errf(v, field+".ttl", "%s is below etcd's minimum lease of 2s", d)
				}
				s.TTL = d
			}
		},
		"network": func(_, v *yaml.Node) { networkNode, s.Network = v, p.network(v, field) },
		"machine": func(_, v *yaml.Node) {
			machineNode = v
			p.mapping(v, field+".machine", map[string]func(k, v *yaml.Node){
				"metadata": func(_, v *yaml.Node) {
					s.Machine.Metadata = p.pairs(v, field+".machine.metadata", metaKey, "metadata key")
				},
				"global": func(_, v *yaml.Node) {
					s.Machine.Global, _ = p.boolean(v, field+".machine.global")
					globalNode = v
				},
			})
		},
		"nginx": func(_, v *yaml.Node) { s.LB = p.nginx(v, field) },
	})
	if s.LB != nil {
		for what, n := range map[string]*yaml.Node{"image": imageNode, "port": portNode, "instances": instancesNode, "network": networkNode} {
			if n != nil {
				p.errf(n, field+"."+what, "a load balancer (nginx:) takes no %s; set it on the app service", what)
			}
		}
		if s.Health != nil || s.Spread || len(s.Env) > 0 || len(s.Command) > 0 {
			p.errf(v, field, "a load balancer (nginx:) takes only nginx and machine")
		}
		return s
	}
	if imageNode == nil {
		p.errf(v, field+".image", "is required for an app service (or give nginx: for a load balancer)")
	}
	if portNode == nil {
		p.errf(v, field+".port", "is required: the port the app listens on inside its container")
	}
	if s.Machine.Global && s.Spread {
		// Reported where global is set (the line the user reads), not on
		// the service's first line.
		at := globalNode
		if at == nil {
			at = machineNode
		}
		p.errf(at, field+".machine.global", "global services run on every machine; spread does not apply (remove spread: true or global: true)")
	}
	if s.Machine.Global && instancesNode != nil {
		p.errf(instancesNode, field+".instances", "a global service runs one instance on every matching machine; instances does not apply (remove instances: or global: true)")
	}
	return s
}

// network reads an app's Docker network: one that gives the app an
// address of its own, for its sidekick to register.
func (p *parser) network(v *yaml.Node, field string) string {
	n, ok := p.str(v, field+".network")
	switch {
	case !ok:
	case n == "host" || n == "none":
		p.errf(v, field+".network", "%q gives the app no address of its own: its sidekick would have nothing to register and the roll would wait for it; use bridge (the default: flannel's network) or a Docker network of your own", n)
	case !dockerNetwork.MatchString(n):
		p.errf(v, field+".network", "%q is not a Docker network name (letters, digits, '_', '.', '-')", n)
	}
	return n
}

// crossCheck checks references between services.
func (p *parser) crossCheck(spec *Spec) {
	for _, s := range spec.Services {
		if s.LB == nil || s.LB.Upstream == "" {
			continue
		}
		target := spec.Service(s.LB.Upstream)
		switch {
		case target == nil:
			p.errs = append(p.errs, &Error{File: p.file, Line: s.Line, Field: "services." + s.Name + ".nginx.upstream",
				Msg: fmt.Sprintf("%q is not a service in this file", s.LB.Upstream)})
		case target.LB != nil:
			p.errs = append(p.errs, &Error{File: p.file, Line: s.Line, Field: "services." + s.Name + ".nginx.upstream",
				Msg: fmt.Sprintf("%q is a load balancer, not an app service", s.LB.Upstream)})
		}
	}
}

// health parses a service's health check.
func (p *parser) health(v *yaml.Node, field string) *Health {
	h := &Health{Interval: Defaults.HealthInterval, Timeout: Defaults.HealthTimeout}
	p.mapping(v, field+".health", map[string]func(k, v *yaml.Node){
		"http": func(_, v *yaml.Node) {
			if path, ok := p.str(v, field+".health.http"); ok {
				if !strings.HasPrefix(path, "/") || strings.Contains(path, " ") {
					p.errf(v, field+".health.http", "%q must be a path starting with /", path)
				}
				h.HTTP = path
			}
		},
		"interval": func(_, v *yaml.Node) { h.Interval, _ = p.duration(v, field+".health.interval") },
		"timeout":  func(_, v *yaml.Node) { h.Timeout, _ = p.duration(v, field+".health.timeout") },
	})
	if h.HTTP == "" {
		p.errf(v, field+".health.http", "is required in health (e.g. http: /healthz)")
	}
	if h.Interval > 0 && h.Timeout > 0 {
		if err := registry.CheckHealth(h.Interval, h.Timeout); err != nil {
			p.errf(v, field+".health.timeout", "%v", err)
		}
	}
	return h
}

// nginx parses a load balancer's settings.
func (p *parser) nginx(v *yaml.Node, field string) *LB {
	lb := &LB{Listen: Defaults.LBListen, Mode: Defaults.NginxMode}
	p.mapping(v, field+".nginx", map[string]func(k, v *yaml.Node){
		"listen": func(_, v *yaml.Node) {
			if n, ok := p.integer(v, field+".nginx.listen", 1, 65535); ok {
				lb.Listen = n
			}
		},
		"upstream": func(_, v *yaml.Node) {
			if u, ok := p.str(v, field+".nginx.upstream"); ok {
				lb.Upstream = u
			}
		},
		"image": func(_, v *yaml.Node) {
			if img, ok := p.str(v, field+".nginx.image"); ok {
				if !imageRef.MatchString(img) {
					p.errf(v, field+".nginx.image", "%q is not an image reference like nginx:1.27", img)
				}
				lb.Image = img
			}
		},
		"mode": func(_, v *yaml.Node) {
			if m, ok := p.str(v, field+".nginx.mode"); ok {
				if m != "dynamic" && m != "reload" {
					p.errf(v, field+".nginx.mode", "%q is not dynamic (instance changes pushed to nginx's Lua balancer, no reloads; needs nginx with Lua, e.g. OpenResty) or reload (plain nginx, reloaded on changes)", m)
				}
				lb.Mode = m
			}
		},
	})
	if lb.Image == "" {
		lb.Image = Defaults.NginxImage
		if lb.Mode == "dynamic" {
			lb.Image = Defaults.NginxLuaImage
		}
	}
	if lb.Upstream == "" {
		p.errf(v, field+".nginx.upstream", "is required: the app service this load balancer fronts")
	}
	return lb
}
