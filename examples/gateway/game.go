package main

import (
	"github.com/supersocket-go/supersocket"
)

// newGameServer returns a back-end "game" server, not started: it echoes each packet with
// the same packet ID, its body prefixed by "<name>:" so that a reply shows which back end
// answered.
func newGameServer(addr, name string) (*supersocket.Server[struct{}], error) {
	stamp := []byte(name + ":")
	return supersocket.New(supersocket.Config{
		Name:             name,
		Listeners:        []supersocket.ListenerConfig{{Addr: addr}},
		Filter:           packetFilter(),
		MaxRequestLength: maxRequestLength,
	}, supersocket.Handlers[struct{}]{
		Request: func(s *supersocket.Session[struct{}], req supersocket.Request) {
			s.Send(header(packetID(req.Header), replyOK, len(stamp)+len(req.Body)), stamp, req.Body)
		},
	})
}
