package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: a node that has left
// the cluster, and a NATS server shut down, leave nothing behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
