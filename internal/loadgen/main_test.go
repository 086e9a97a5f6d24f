package loadgen

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: the load run's
// connections, the progress line, the apps the tests serve and their proxies all end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
