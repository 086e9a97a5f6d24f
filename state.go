package supersocket

// ServerState is where a server is in its lifecycle:
// NotStarted → Starting → Running → Stopping → NotStarted (SuperSocket's ServerState,
// without the setup states that New replaces).
type ServerState int32

const (
	// StateNotStarted: New returned, or the last Shutdown/Stop finished. Start is allowed.
	StateNotStarted ServerState = iota
	// StateStarting: Start is binding listeners.
	StateStarting
	// StateRunning: every listener accepts.
	StateRunning
	// StateStopping: Shutdown or Stop is closing listeners and sessions.
	StateStopping
)

// String returns the state's name, such as "Running".
func (s ServerState) String() string {
	switch s {
	case StateNotStarted:
		return "NotStarted"
	case StateStarting:
		return "Starting"
	case StateRunning:
		return "Running"
	case StateStopping:
		return "Stopping"
	}
	return "ServerState(?)"
}
