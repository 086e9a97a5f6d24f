package apps

import (
	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/filter"
)

// The raw echo apps the benchmark suite (supersocket bench, bench/run.sh) measures
// against plain Go servers of the same protocols.
func init() {
	apps["lineecho"] = LineEcho
	apps["lenecho"] = LenEcho
}

// LineEcho echoes every line, "\n" included, byte for byte.
func LineEcho(cfg supersocket.Config) (Server, error) {
	cfg.Filter = filter.Terminator([]byte("\n"))
	return supersocket.New(cfg, supersocket.Handlers[struct{}]{Request: echoFrame})
}

// LenEcho echoes every frame of a 4-byte big-endian body length and the body, byte for
// byte.
func LenEcho(cfg supersocket.Config) (Server, error) {
	cfg.Filter = filter.Uint32BE()
	return supersocket.New(cfg, supersocket.Handlers[struct{}]{Request: echoFrame})
}

func echoFrame(s *supersocket.Session[struct{}], req supersocket.Request) {
	s.Send(req.Frame)
}
