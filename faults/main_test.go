package faults

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests; each test also checks
// its own goroutines and file descriptors (see baseline).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
