package supersocket

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

// TestListenerStatsAndRequestObserver: per-listener counters follow the sessions that came
// through each listener, and ObserveRequest sees every request with its key.
func TestListenerStatsAndRequestObserver(t *testing.T) {
	var mu sync.Mutex
	observed := map[string]int{}
	srv := startServer(t, Config{
		Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}, {Addr: "127.0.0.1:0"}},
		Filter:    filter.CommandLine(),
		ObserveRequest: func(key string, d time.Duration) {
			if d < 0 {
				t.Errorf("negative duration %v", d)
			}
			mu.Lock()
			observed[key]++
			mu.Unlock()
		},
	}, Handlers[struct{}]{Request: func(s *Session[struct{}], r Request) { s.Send([]byte("ok\n")) }})
	before := srv.Stats()
	if before.Started.IsZero() || len(before.Listeners) != 2 {
		t.Fatalf("stats of a running server: %+v", before)
	}
	addrs := srv.Addrs()
	var conns []net.Conn
	for i, n := range []int{2, 1} {
		for range n {
			c, err := net.Dial("tcp", addrs[i].String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(waitLong))
			c.Write([]byte("PING\r\nPONG x\r\n"))
			r := bufio.NewReader(c)
			r.ReadString('\n')
			r.ReadString('\n')
			conns = append(conns, c)
		}
	}
	st := srv.Stats()
	for i, want := range []int64{2, 1} {
		l := st.Listeners[i]
		if l.Sessions != want || l.Accepted != uint64(want) || l.Addr != addrs[i].String() || l.Network != "tcp" || l.TLS {
			t.Errorf("listener %d: %+v, want %d sessions and accepted", i, l, want)
		}
	}
	mu.Lock()
	if observed["PING"] != 3 || observed["PONG"] != 3 {
		t.Errorf("observed %v, want PING and PONG 3 times each", observed)
	}
	mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	waitUntil(t, "sessions closed", func() bool { return srv.SessionCount() == 0 })
	st = srv.Stats()
	if st.Listeners[0].Sessions != 0 || st.Listeners[1].Sessions != 0 {
		t.Errorf("listener sessions after close: %+v", st.Listeners)
	}
	srv.Stop()
	if st := srv.Stats(); !st.Started.IsZero() || st.Listeners != nil {
		t.Errorf("stats of a stopped server: %+v", st)
	}
}
