package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv is the variable under which a missing part (Docker engine,
// nginx, systemd-analyze, curl) fails a test instead of skipping it;
// .ci/run sets it, so CI cannot pass by skipping.
const RequireEnv = "DEPLOYCTL_REQUIRE_ALL"

// Missing skips t because a part it needs is missing, or fails it when
// RequireEnv is set.
func Missing(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s (%s is set: a missing part is a failure, not a skip)", msg, RequireEnv)
	}
	t.Skip("SKIP: " + msg)
}
