package loadgen

import "strings"

// Kinds of error, as the report counts them.
const (
	errDial     = "dial"     // a connection could not be opened
	errMismatch = "mismatch" // a reply differed from the request's echo (corrupt, reordered, lost framing)
	errIO       = "io"       // the connection failed or the server closed it with requests in flight
	errTimeout  = "timeout"  // replies still missing when the run's deadline passed
	errIdle     = "exchange" // an idle-mode connection's one exchange failed
)

// errorTally counts errors by kind and keeps the first message of each kind.
type errorTally struct {
	kinds map[string]int64
	first map[string]string
}

// add counts err as one error of kind.
func (t *errorTally) add(kind string, err error) {
	if t.kinds == nil {
		t.kinds, t.first = map[string]int64{}, map[string]string{}
	}
	t.kinds[kind]++
	if _, ok := t.first[kind]; !ok {
		t.first[kind] = err.Error()
	}
}

// total is the number of errors of every kind.
func (t *errorTally) total() (n int64) {
	for _, c := range t.kinds {
		n += c
	}
	return n
}

// summary is one example message per kind, in a stable order.
func (t *errorTally) summary() string {
	var parts []string
	for _, k := range []string{errDial, errMismatch, errIO, errTimeout, errIdle} {
		if m, ok := t.first[k]; ok {
			parts = append(parts, k+": "+m)
		}
	}
	return strings.Join(parts, "; ")
}
