package etcdconn

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := []Config{
		{Endpoints: []string{"http://127.0.0.1:2379"}, DialTimeout: time.Second},
		{Endpoints: []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}, DialTimeout: time.Second},
		{Endpoints: []string{"unix:///run/etcd.sock"}, DialTimeout: time.Second},
		{Endpoints: []string{"http://127.0.0.1:2379"}, Username: "u", Password: "p", DialTimeout: time.Second},
	}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := map[string]Config{
		"at least one URL":    {DialTimeout: time.Second},
		"needs host and port": {Endpoints: []string{"http://127.0.0.1"}, DialTimeout: time.Second},
		"must start with":     {Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: time.Second},
		"go together":         {Endpoints: []string{"https://127.0.0.1:2379"}, Cert: "/etc/hostname", DialTimeout: time.Second},
		"--etcd-cacert":       {Endpoints: []string{"https://127.0.0.1:2379"}, CACert: "/nonexistent/ca.pem", DialTimeout: time.Second},
		"needs a password":    {Endpoints: []string{"http://127.0.0.1:2379"}, Username: "u", DialTimeout: time.Second},
		"must be positive":    {Endpoints: []string{"http://127.0.0.1:2379"}},
		"plain http":          {Endpoints: []string{"http://127.0.0.1:2379"}, CACert: "/etc/hostname", DialTimeout: time.Second},
	}
	t.Setenv("ETCD_PASSWORD", "")
	for want, c := range bad {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error with %q, got %v", want, err)
		}
	}
}
