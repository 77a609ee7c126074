package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// fakeDO answers GET /v2/droplets?tag_name= like the DigitalOcean API:
// pages of per_page droplets, links.pages.next/last, rate-limit headers.
func fakeDO(t *testing.T, total int, token string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("RateLimit-Limit", "5000")
		w.Header().Set("RateLimit-Remaining", "4999")
		w.Header().Set("RateLimit-Reset", "1767225600")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"id":"Unauthorized","message":"Unable to authenticate you"}`)
			return
		}
		if r.URL.Path != "/v2/droplets" || r.URL.Query().Get("tag_name") != "deployctl-prod" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"id":"not_found","message":"The resource you were accessing could not be found."}`)
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		if page < 1 {
			page = 1
		}
		per = 2 // the server decides the page size, as DO caps it
		var ds []map[string]any
		for i := (page-1)*per + 1; i <= total && i <= page*per; i++ {
			ds = append(ds, map[string]any{
				"id": i, "name": fmt.Sprintf("deployctl-prod-%d", i), "status": "active", "size_slug": "s-2vcpu-4gb",
				"region":     map[string]any{"slug": "nyc3"},
				"tags":       []string{"deployctl-prod"},
				"created_at": "2026-11-25T10:00:00Z",
				"networks": map[string]any{"v4": []map[string]any{
					{"ip_address": fmt.Sprintf("10.10.0.%d", i), "type": "private"},
					{"ip_address": fmt.Sprintf("203.0.113.%d", i), "type": "public"},
				}},
			})
		}
		last := (total + per - 1) / per
		links := map[string]any{}
		if page < last {
			base := "https://api.digitalocean.com/v2/droplets?tag_name=deployctl-prod&per_page=2"
			links["pages"] = map[string]any{"next": fmt.Sprintf("%s&page=%d", base, page+1), "last": fmt.Sprintf("%s&page=%d", base, last)}
			if page > 1 {
				links["pages"].(map[string]any)["prev"] = fmt.Sprintf("%s&page=%d", base, page-1)
			}
		} else if page > 1 {
			base := "https://api.digitalocean.com/v2/droplets?tag_name=deployctl-prod&per_page=2"
			links["pages"] = map[string]any{"first": base + "&page=1", "prev": fmt.Sprintf("%s&page=%d", base, page-1)}
		}
		json.NewEncoder(w).Encode(map[string]any{"droplets": ds, "links": links, "meta": map[string]any{"total": total}})
	}))
}

func TestListByTagPages(t *testing.T) {
	t.Setenv(TokenEnv, "tok")
	srv := fakeDO(t, 5, "tok")
	defer srv.Close()
	c, err := New(srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.ListByTag(context.Background(), "deployctl-prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 5 {
		t.Fatalf("%d nodes, want 5 across 3 pages", len(nodes))
	}
	n := nodes[2]
	if n.Name != "deployctl-prod-3" || n.PublicIP != "203.0.113.3" || n.PrivateIP != "10.10.0.3" || n.Region != "nyc3" || n.Size != "s-2vcpu-4gb" {
		t.Fatalf("node %+v", n)
	}
}

func TestErrors(t *testing.T) {
	t.Setenv(TokenEnv, "wrong")
	srv := fakeDO(t, 1, "tok")
	defer srv.Close()
	c, _ := New(srv.URL+"/", nil)
	_, err := c.ListByTag(context.Background(), "deployctl-prod")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Unable to authenticate") {
		t.Fatalf("unauthorized: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatal("token leaked into the error")
	}
	t.Setenv(TokenEnv, "")
	if _, err := New("", nil); err == nil || !strings.Contains(err.Error(), "DIGITALOCEAN_TOKEN") {
		t.Fatalf("missing token: %v", err)
	}
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "5000")
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", "1767225600")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"id":"too_many_requests","message":"API Rate limit exceeded."}`)
	}))
	defer limited.Close()
	t.Setenv(TokenEnv, "tok")
	c, _ = New(limited.URL+"/", nil)
	if _, err := c.ListByTag(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("rate limit: %v", err)
	}
}

func TestParseOutputs(t *testing.T) {
	e, err := ParseOutputs([]byte(`{"clusterTag":"deployctl-prod","fleetEndpoint":"unix:///var/run/fleet.sock","fleetTunnel":"core@203.0.113.1","etcdEndpoints":["http://10.10.0.1:2379"],"lbAddresses":["203.0.113.1"]}`))
	if err != nil || e.FleetTunnel != "core@203.0.113.1" || len(e.EtcdEndpoints) != 1 {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := ParseOutputs([]byte(`{}`)); err == nil {
		t.Fatal("empty outputs accepted")
	}
}
