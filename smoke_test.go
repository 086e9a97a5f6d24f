package supersocket

import (
	"bufio"
	"net"
	"testing"
)

func TestSmokeEcho(t *testing.T) {
	srv, err := New(Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}}}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) { s.Send([]byte(r.Key), []byte(" "), r.Body, []byte("\r\n")) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ECHO hello world\r\nADD 1 2\r\n"))
	br := bufio.NewReader(c)
	for _, want := range []string{"ECHO hello world\r\n", "ADD 1 2\r\n"} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("got %q %v want %q", line, err, want)
		}
	}
}
