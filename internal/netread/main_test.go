package netread

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: a Parker's goroutine must
// end with Stop, or on its own when it fails.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
