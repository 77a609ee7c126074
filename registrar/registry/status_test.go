package registry

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestStatusReason(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	since := now.Add(-58 * time.Second)
	for _, c := range []struct {
		s    Status
		want string
	}{
		{Status{State: StateHealthFailing, Check: "GET /healthz", LastResult: "503", HTTPStatus: 503, FailingSince: &since}, "health check GET /healthz -> 503 for 58s"},
		{Status{State: StateHealthFailing, Check: "GET /healthz", LastResult: "connection refused", FailingSince: &since}, "health check GET /healthz fails: connection refused for 58s"},
		{Status{State: StateOtherVersion, RunVersion: "aaa", WantVersion: "bbb"}, "its container runs version aaa, the unit wants bbb"},
		{Status{State: StateServing, Addr: "10.1.0.2:3000"}, "serving at 10.1.0.2:3000"},
	} {
		if got := c.s.Reason(now); got != c.want {
			t.Errorf("Reason(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
	s := Status{Machine: "0aabb6d2c3d4e5f6", Host: "core-1"}
	if got := s.Where(); got != "sidekick on machine 0aabb6d2, host core-1" {
		t.Errorf("Where = %q", got)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", MaxResultLen)
	c := Clip(long)
	if len(c) > MaxResultLen || !utf8.ValidString(c) || !strings.HasSuffix(c, "...") {
		t.Fatalf("Clip: %d bytes, valid %v: %q", len(c), utf8.ValidString(c), c)
	}
	if Clip("short") != "short" {
		t.Fatal("Clip changed a short string")
	}
	if StatusKey("/services", "someapp", "someapp@1") != "/services/someapp/status/someapp@1" {
		t.Fatal(StatusKey("/services", "someapp", "someapp@1"))
	}
}
