package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: Signalled's ends at release.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
