package nginx

import (
	"context"

	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/upstream"
)

// ApplySnapshot applies one snapshot once, for the benchmarks that time a
// single apply.
func ApplySnapshot(f *Follower, ctx context.Context, s catalog.Snapshot) ([]upstream.Backend, Outcome, error) {
	return f.applySnapshot(ctx, s)
}
