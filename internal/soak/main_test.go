package soak

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: a soak run's servers and
// clients all end before Main returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
