package supersocket

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every goroutine a server
// starts must have ended once its Shutdown or Stop returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
