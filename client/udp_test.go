package client_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
)

// udpEchoServer answers each datagram with the same bytes, except:
// "TWO\r\n" → two frames in one datagram; "HALF\r\n" → a datagram ending inside a frame.
func udpEchoServer(t *testing.T) string {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			reply := buf[:n]
			switch string(reply) {
			case "TWO\r\n":
				reply = []byte("one\r\ntwo\r\n")
			case "HALF\r\n":
				reply = []byte("ha")
			}
			pc.WriteToUDP(reply, from)
		}
	})
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}

func TestUDP(t *testing.T) {
	addr := udpEchoServer(t)
	c := dial(t, client.Config{Network: "udp", Addr: addr, Filter: filter.CommandLine()})

	// Parts make one datagram.
	m, err := c.Request(testCtx(t), []byte("ECHO "), []byte("in parts"), crlf)
	if err != nil || string(m.Frame) != "ECHO in parts\r\n" {
		t.Fatalf("Request: %q, %v", m.Frame, err)
	}

	// Two frames in one datagram: the reply, then a push.
	m, err = c.Request(testCtx(t), []byte("TWO\r\n"))
	if err != nil || m.Key != "one" {
		t.Fatalf("Request TWO: %q, %v", m.Frame, err)
	}
	if m, err := c.Receive(testCtx(t)); err != nil || m.Key != "two" {
		t.Fatalf("Receive: %q, %v", m.Frame, err)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 20 {
				want := fmt.Sprintf("ECHO udp %d-%d", g, k)
				m, err := c.Request(testCtx(t), []byte(want+"\r\n"))
				if err != nil {
					t.Errorf("Request: %v", err)
					return
				}
				if got := strings.TrimSpace(string(m.Frame)); got != want {
					t.Errorf("reply %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.TrySend([]byte("ECHO ignored\r\n")); err != nil {
		t.Fatalf("TrySend: %v", err)
	}
	c.Close()
	if err := c.Send([]byte("x")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestUDPDatagramEndsInsideFrame(t *testing.T) {
	addr := udpEchoServer(t)
	c := dial(t, client.Config{Network: "udp", Addr: addr, Filter: filter.CommandLine()})
	_, err := c.Request(testCtx(t), []byte("HALF\r\n"))
	if !errors.Is(err, client.ErrProtocol) || !strings.Contains(err.Error(), "datagram ends inside a frame") {
		t.Fatalf("Request answered by half a frame: %v", err)
	}
}
