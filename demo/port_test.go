package demo

import "testing"

// An instance never gets the demo's nginx or etcd port: both are free
// while the instances start, and a free-port pick can return them.
func TestFreePortButSkipsTheDemosPorts(t *testing.T) {
	picks := []int{8080, 2379, 8080, 23456}
	pick := func() (int, error) { p := picks[0]; picks = picks[1:]; return p, nil }
	if p, err := freePortBut(pick, 8080, 2379); err != nil || p != 23456 {
		t.Fatalf("got %d, %v; want 23456", p, err)
	}
	always := func() (int, error) { return 8080, nil }
	if _, err := freePortBut(always, 8080); err == nil {
		t.Fatal("a pick that only returns a taken port must fail, not loop")
	}
}
