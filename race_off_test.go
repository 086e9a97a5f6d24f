//go:build !race

package supersocket

// raceEnabled: see race_on_test.go.
const raceEnabled = false
