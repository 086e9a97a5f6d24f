package client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/apps"
)

var crlf = []byte("\r\n")

// lineServer is a command-line server for the behaviour tests:
//
//	ECHO x     → x
//	SUB        → OK
//	PUSH n     → OK, then n lines "EVENT i" sent from another goroutine
//	EVENTFUL x → "EVENT before x", then x
//	SLOW x     → x, once release is closed
//	HANG       → nothing; the server closes the session
//	GARBAGE    → bytes that are not a line for a BeginEndMark client
//	BIG n      → a line of n bytes
//
// Goroutines it starts end before the test's cleanup returns.
type lineServer struct {
	srv     *supersocket.Server[struct{}]
	release chan struct{}
	once    sync.Once
	got     chan string // every ECHO body, when not nil
	// goroutines counts the PUSH goroutines. Not a WaitGroup: its first Add may follow
	// the cleanup's Wait in a way only the network orders, which the race detector cannot
	// see.
	goroutines tracker
}

// tracker waits for goroutines, like a WaitGroup whose Go and Wait may overlap.
type tracker struct {
	mu      sync.Mutex
	idle    sync.Cond
	running int
}

func (tr *tracker) Go(f func()) {
	tr.mu.Lock()
	tr.running++
	tr.mu.Unlock()
	go func() {
		defer func() {
			tr.mu.Lock()
			tr.running--
			if tr.idle.L != nil {
				tr.idle.Broadcast()
			}
			tr.mu.Unlock()
		}()
		f()
	}()
}

func (tr *tracker) Wait() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.idle.L = &tr.mu
	for tr.running > 0 {
		tr.idle.Wait()
	}
}

// startLineServer starts a lineServer; got, if not nil, receives every ECHO body.
func startLineServer(t *testing.T, got chan string) *lineServer {
	ls := &lineServer{release: make(chan struct{}), got: got}
	ls.srv = startServer(t, filter.CommandLine(), ls.handle)
	// Registered after the server's Stop, so it runs before it: a handler blocked in SLOW
	// must be released for the server to stop.
	t.Cleanup(func() {
		ls.unblock()
		ls.goroutines.Wait()
	})
	return ls
}

func (ls *lineServer) handle(s *session, req supersocket.Request) {
	switch req.Key {
	case "ECHO":
		if ls.got != nil {
			ls.got <- string(req.Body)
		}
		s.Send(req.Body, crlf)
	case "SUB":
		s.Send([]byte("OK\r\n"))
	case "PUSH":
		n, _ := strconv.Atoi(string(req.Body))
		s.Send([]byte("OK\r\n"))
		ls.goroutines.Go(func() {
			for i := range n {
				s.Send(fmt.Appendf(nil, "EVENT %d\r\n", i))
			}
		})
	case "EVENTFUL":
		s.Send([]byte("EVENT before "), req.Body, crlf)
		s.Send(req.Body, crlf)
	case "SLOW":
		<-ls.release
		s.Send(req.Body, crlf)
	case "HANG":
		s.Close(supersocket.CloseServerClosing)
	case "GARBAGE":
		s.Send([]byte("garbage\r\n"))
	case "BIG":
		n, _ := strconv.Atoi(string(req.Body))
		s.Send(bytes.Repeat([]byte{'z'}, n), crlf)
	}
}

// unblock lets SLOW requests answer.
func (ls *lineServer) unblock() { ls.once.Do(func() { close(ls.release) }) }

func (ls *lineServer) addr() string { return addrOf(ls.srv) }

func lineClient(t *testing.T, ls *lineServer, cfg client.Config) *client.Conn {
	cfg.Addr = ls.addr()
	if cfg.Filter == nil {
		cfg.Filter = filter.CommandLine()
	}
	return dial(t, cfg)
}

// request sends line and returns the reply line, without its ending.
func request(t *testing.T, c *client.Conn, line string) string {
	t.Helper()
	m, err := c.Request(testCtx(t), []byte(line+"\r\n"))
	if err != nil {
		t.Fatalf("Request %q: %v", line, err)
	}
	return strings.TrimSuffix(string(m.Frame), "\r\n")
}

func receiveLine(t *testing.T, c *client.Conn) string {
	t.Helper()
	m, err := c.Receive(testCtx(t))
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return strings.TrimSuffix(string(m.Frame), "\r\n")
}

func TestPushedMessagesReceive(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{})
	if got := request(t, c, "SUB"); got != "OK" {
		t.Fatalf("SUB: %q", got)
	}
	// The session exists (it answered): a broadcast reaches it.
	if n := ls.srv.Broadcast([]byte("NEWS hello\r\n"), nil); n != 1 {
		t.Fatalf("Broadcast reached %d sessions", n)
	}
	if got := receiveLine(t, c); got != "NEWS hello" {
		t.Fatalf("pushed %q", got)
	}
	// Pushes sent by another goroutine of the server, in order.
	if got := request(t, c, "PUSH 20"); got != "OK" {
		t.Fatalf("PUSH: %q", got)
	}
	for i := range 20 {
		if got, want := receiveLine(t, c), fmt.Sprintf("EVENT %d", i); got != want {
			t.Fatalf("push %d: %q, want %q", i, got, want)
		}
	}
	// Receive honours its ctx.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a cancelled ctx: %v", err)
	}
}

func TestPushedMessagesOnMessage(t *testing.T) {
	ls := startLineServer(t, nil)
	pushed := make(chan client.Message, 64)
	c := lineClient(t, ls, client.Config{OnMessage: func(m client.Message) { pushed <- m }})
	if got := request(t, c, "PUSH 3"); got != "OK" {
		t.Fatalf("PUSH: %q", got)
	}
	for i := range 3 {
		m := recv(t, pushed, "a pushed message")
		if m.Key != "EVENT" || string(m.Body) != strconv.Itoa(i) {
			t.Fatalf("push %d: key %q body %q", i, m.Key, m.Body)
		}
	}
	if _, err := c.Receive(testCtx(t)); !errors.Is(err, client.ErrNoReceive) {
		t.Fatalf("Receive with OnMessage set: %v", err)
	}
}

// TestIsPush interleaves events with replies: IsPush keeps them from taking the place of
// a reply, under pipelined Requests.
func TestIsPush(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{IsPush: func(m client.Message) bool { return m.Key == "EVENT" }})
	const goroutines, each = 4, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for k := range each {
				want := fmt.Sprintf("g%d-%d", g, k)
				m, err := c.Request(testCtx(t), []byte("EVENTFUL "+want+"\r\n"))
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
	for range goroutines * each {
		if m, err := c.Receive(testCtx(t)); err != nil || m.Key != "EVENT" {
			t.Fatalf("Receive: %q, %v", m.Frame, err)
		}
	}
}

// TestRequestTimeoutFIFO: a Request whose ctx ends returns its error; the late reply is
// dropped, neither handed to the next Request nor pushed.
func TestRequestTimeoutFIFO(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := c.Request(ctx, []byte("SLOW late\r\n"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request past its deadline: %v", err)
	}
	next := make(chan string, 1)
	go func() {
		m, err := c.Request(testCtx(t), []byte("ECHO fresh\r\n"))
		if err != nil {
			next <- err.Error()
			return
		}
		next <- strings.TrimSpace(string(m.Frame))
	}()
	ls.unblock() // the server answers "late", then "fresh"
	if got := recv(t, next, "the next reply"); got != "fresh" {
		t.Fatalf("the Request after a timed-out one got %q, want %q", got, "fresh")
	}
	ls.srv.Broadcast([]byte("END\r\n"), nil)
	if got := receiveLine(t, c); got != "END" {
		t.Fatalf("first pushed message %q: the late reply leaked", got)
	}
}

// echoPacket builds a packet of the echo app: uint16 total size, uint16 id, reserved.
func echoPacket(id uint16, body []byte) []byte {
	p := binary.LittleEndian.AppendUint16(nil, uint16(apps.EchoHeaderSize+len(body)))
	p = binary.LittleEndian.AppendUint16(p, id)
	return append(append(p, 0), body...)
}

func echoID(m client.Message) (uint64, bool) {
	id := binary.LittleEndian.Uint16(m.Header[2:4])
	return uint64(id), id != pushID
}

// pushID marks a pushed echo packet in these tests.
const pushID = 0xffff

// pairState holds back every other reply, so the server answers each pair in reverse.
type pairState struct{ held []byte }

// startShuffleServer answers echo packets out of order: the second packet of each pair is
// answered before the first. A packet with id 0xfffe is answered only when release closes.
func startShuffleServer(t *testing.T, release chan struct{}) *supersocket.Server[pairState] {
	return startServerT(t, "127.0.0.1:0", apps.EchoFilter(), supersocket.Handlers[pairState]{
		Request: func(s *supersocket.Session[pairState], req supersocket.Request) {
			frame := bytes.Clone(req.Frame)
			switch id := binary.LittleEndian.Uint16(req.Header[2:4]); {
			case id == 0xfffe:
				<-release
				s.Send(frame)
			case s.Data().held == nil:
				s.Data().held = frame
			default:
				s.Send(frame)
				s.Send(s.Data().held)
				s.Data().held = nil
			}
		},
	})
}

func TestRequestIDOutOfOrder(t *testing.T) {
	srv := startShuffleServer(t, nil)
	c := dial(t, client.Config{Addr: addrOf(srv), Filter: apps.EchoFilter(), ReplyID: echoID})
	// Each goroutine sends two requests at a time and waits for both: whenever every
	// goroutine waits, an even number of packets has arrived, so none is held for good.
	const goroutines, pairs = 4, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for k := range pairs {
				var pair sync.WaitGroup
				for j := range 2 {
					pair.Go(func() {
						id := uint16(g*2*pairs + 2*k + j)
						b := fmt.Appendf(nil, "payload %d", id)
						m, err := c.RequestID(testCtx(t), uint64(id), echoPacket(id, b))
						if err != nil {
							t.Errorf("RequestID %d: %v", id, err)
						} else if !bytes.Equal(m.Body, b) {
							t.Errorf("RequestID %d: body %q, want %q", id, m.Body, b)
						}
					})
				}
				pair.Wait()
			}
		})
	}
	wg.Wait()

	if _, err := c.Request(testCtx(t), echoPacket(1, nil)); !errors.Is(err, client.ErrMatchMode) {
		t.Fatalf("Request in id mode: %v", err)
	}
}

func TestRequestIDTimeoutAndDuplicate(t *testing.T) {
	release := make(chan struct{})
	srv := startShuffleServer(t, release)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	c := dial(t, client.Config{Addr: addrOf(srv), Filter: apps.EchoFilter(), ReplyID: echoID})

	// Two Requests with one id: whichever registers second is refused.
	ctx, cancel := context.WithCancel(testCtx(t))
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.RequestID(ctx, 0xfffe, echoPacket(0xfffe, []byte("held")))
			errs <- err
		}()
	}
	if err := recv(t, errs, "the duplicate's error"); !errors.Is(err, client.ErrDuplicateID) {
		t.Fatalf("duplicate id: %v", err)
	}
	cancel()
	if err := recv(t, errs, "the cancelled request"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	// Its reply comes late: it is dropped, not pushed.
	once.Do(func() { close(release) })
	var wg sync.WaitGroup
	for id := range uint16(2) { // a pair: the server answers both, in reverse
		wg.Go(func() {
			b := fmt.Appendf(nil, "after %d", id)
			m, err := c.RequestID(testCtx(t), uint64(id), echoPacket(id, b))
			if err != nil || !bytes.Equal(m.Body, b) {
				t.Errorf("RequestID %d: %q, %v", id, m.Body, err)
			}
		})
	}
	wg.Wait()
	srv.Broadcast(echoPacket(pushID, []byte("news")), nil)
	if m, err := c.Receive(testCtx(t)); err != nil || string(m.Body) != "news" {
		t.Fatalf("first pushed message %q, %v: the late reply leaked", m.Frame, err)
	}
}

func TestConnectionLost(t *testing.T) {
	ls := startLineServer(t, nil)
	states := make(chan client.State, 8)
	c := lineClient(t, ls, client.Config{OnStateChange: func(s client.State) { states <- s }})
	if s := recv(t, states, "Connected"); s != client.StateConnected {
		t.Fatalf("first state %v", s)
	}
	_, err := c.Request(testCtx(t), []byte("HANG\r\n"))
	if !errors.Is(err, client.ErrConnectionLost) || !strings.Contains(err.Error(), "server closed the connection") {
		t.Fatalf("Request on a connection the server closed: %v", err)
	}
	recv(t, c.Done(), "the Conn to close")
	if s := recv(t, states, "Closed"); s != client.StateClosed || c.State() != client.StateClosed {
		t.Fatalf("state %v / %v, want Closed", s, c.State())
	}
	if err := c.Err(); !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), "server closed") {
		t.Fatalf("Err: %v", err)
	}
	if err := c.Send([]byte("ECHO x\r\n")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after the loss: %v", err)
	}
	if _, err := c.Request(testCtx(t), []byte("ECHO x\r\n")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Request after the loss: %v", err)
	}
	if c.LocalAddr() != nil || c.RemoteAddr() != nil {
		t.Fatalf("addresses after close: %v %v", c.LocalAddr(), c.RemoteAddr())
	}
}

func TestProtocolError(t *testing.T) {
	t.Run("malformed", func(t *testing.T) {
		ls := startLineServer(t, nil)
		// The client expects "<...>" frames; the server answers a plain line.
		c := lineClient(t, ls, client.Config{Filter: filter.BeginEndMark([]byte("<"), []byte(">"))})
		_, err := c.Request(testCtx(t), []byte("GARBAGE\r\n"))
		for _, want := range []error{client.ErrConnectionLost, client.ErrProtocol, filter.ErrMalformed} {
			if !errors.Is(err, want) {
				t.Fatalf("Request answered with garbage: %v; want it to wrap %q", err, want)
			}
		}
		if !strings.Contains(err.Error(), "protocol error") {
			t.Fatalf("error does not say protocol error: %v", err)
		}
		recv(t, c.Done(), "the Conn to close")
		if err := c.Err(); !errors.Is(err, client.ErrClosed) || !errors.Is(err, client.ErrProtocol) {
			t.Fatalf("Err: %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		ls := startLineServer(t, nil)
		c := lineClient(t, ls, client.Config{MaxRequestLength: 64})
		if got := request(t, c, "BIG 60"); len(got) != 60 {
			// A 62-byte line with its ending: within the limit.
			t.Fatalf("BIG 60: %q", got)
		}
		_, err := c.Request(testCtx(t), []byte("BIG 100000\r\n"))
		if !errors.Is(err, client.ErrProtocol) || !errors.Is(err, filter.ErrTooLarge) {
			t.Fatalf("Request answered over MaxRequestLength: %v", err)
		}
	})
}

// TestSplitAndCoalesced feeds the client's filter several frames in one read, then a frame
// one byte per write.
func TestSplitAndCoalesced(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		if _, err := c.Write([]byte("one\r\ntwo\r\nthree\r\nfo")); err != nil {
			return
		}
		for _, b := range []byte("ur\r\nfive\r\n") {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
		buf := make([]byte, 1)
		c.Read(buf) // until the client closes
	})
	c := dial(t, client.Config{Addr: addr, Filter: filter.Terminator(crlf)})
	for _, want := range []string{"one", "two", "three", "four", "five"} {
		m, err := c.Receive(testCtx(t))
		if err != nil || string(m.Body) != want {
			t.Fatalf("Receive: %q, %v; want %q", m.Body, err, want)
		}
	}
}

// TestMessageOwned: a Message stays intact while the client reads on, and its slices
// cannot overwrite each other.
func TestMessageOwned(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{})
	first, err := c.Request(testCtx(t), []byte("ECHO KEY first body\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		request(t, c, fmt.Sprintf("ECHO KEY overwrite %d", i))
	}
	if first.Key != "KEY" || string(first.Body) != "first body" || string(first.Frame) != "KEY first body\r\n" {
		t.Fatalf("first message changed: %q %q %q", first.Key, first.Body, first.Frame)
	}
	if cap(first.Body) != len(first.Body) {
		t.Fatalf("Body's capacity %d reaches past it (%d)", cap(first.Body), len(first.Body))
	}
	_ = append(first.Body, "!!!!"...)
	if string(first.Frame) != "KEY first body\r\n" {
		t.Fatalf("appending to Body changed Frame: %q", first.Frame)
	}
}

// TestSendCopies: the caller may reuse its buffer as soon as Send returns.
func TestSendCopies(t *testing.T) {
	ls := startLineServer(t, make(chan string, 100))
	c := lineClient(t, ls, client.Config{})
	buf := []byte("ECHO 00\r\n")
	for i := range 100 {
		copy(buf[5:7], fmt.Sprintf("%02d", i))
		if err := c.Send(buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if got := recv(t, ls.got, "an ECHO"); got != fmt.Sprintf("%02d", i) {
			t.Fatalf("request %d arrived as %q", i, got)
		}
	}
}

// TestSendBounds: with the server not reading, TrySend reports a full queue, Send times
// out after SendTimeout, and Close gives up flushing after CloseLinger.
func TestSendBounds(t *testing.T) {
	accepted := make(chan struct{})
	addr := rawServer(t, func(c net.Conn) {
		close(accepted)
		<-t.Context().Done() // never reads; closed by the cleanup
	})
	const sendTimeout = 50 * time.Millisecond
	c := dial(t, client.Config{
		Addr: addr, Filter: filter.CommandLine(),
		SendQueueSize: 4, SendQueueBytes: 1 << 20, SendTimeout: sendTimeout, CloseLinger: sendTimeout,
	})
	recv(t, accepted, "the connection")
	msg := bytes.Repeat([]byte{'x'}, 256<<10)
	full := false
	for range 4000 { // at most 1 GB: far more than any socket buffers
		if err := c.TrySend(msg); err != nil {
			if !errors.Is(err, client.ErrSendQueueFull) {
				t.Fatalf("TrySend: %v", err)
			}
			full = true
			break
		}
	}
	if !full {
		t.Fatal("the send queue never filled")
	}
	// The writer takes the whole queue per batch, so room comes back until the socket's
	// buffers are full too; then Send times out.
	timedOut := false
	for range 4000 {
		start := time.Now()
		err := c.Send(msg)
		if err == nil {
			continue
		}
		if !errors.Is(err, client.ErrSendTimeout) {
			t.Fatalf("Send: %v", err)
		}
		if d := time.Since(start); d < sendTimeout {
			t.Fatalf("Send gave up after %v, before SendTimeout %v", d, sendTimeout)
		}
		timedOut = true
		break
	}
	if !timedOut {
		t.Fatal("Send never timed out")
	}
	if err := c.TrySend(msg); !errors.Is(err, client.ErrSendQueueFull) {
		t.Fatalf("TrySend on a stuck queue: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Request(ctx, msg); !errors.Is(err, client.ErrSendTimeout) {
		t.Fatalf("Request on a full queue: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.TrySend([]byte("x")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("TrySend after Close: %v", err)
	}
}

// TestCloseFlushes: bytes queued before Close reach the server.
func TestCloseFlushes(t *testing.T) {
	ls := startLineServer(t, make(chan string, 200))
	c := lineClient(t, ls, client.Config{})
	for i := range 200 {
		if err := c.Send(fmt.Appendf(nil, "ECHO %d\r\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	for i := range 200 {
		if got := recv(t, ls.got, "a flushed request"); got != strconv.Itoa(i) {
			t.Fatalf("request %d arrived as %q", i, got)
		}
	}
}

func TestClose(t *testing.T) {
	ls := startLineServer(t, nil)
	var mu sync.Mutex
	var states []client.State
	// The server is blocked in SLOW and will not close its side: a short linger.
	c := lineClient(t, ls, client.Config{CloseLinger: 50 * time.Millisecond, OnStateChange: func(s client.State) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	}})
	if c.LocalAddr() == nil || c.RemoteAddr().String() != ls.addr() || c.State() != client.StateConnected {
		t.Fatalf("local %v remote %v state %v", c.LocalAddr(), c.RemoteAddr(), c.State())
	}
	if c.Err() != nil {
		t.Fatalf("Err while open: %v", c.Err())
	}

	// A Request waiting for its reply fails with ErrClosed.
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Request(testCtx(t), []byte("SLOW never\r\n"))
		waiting <- err
	}()

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := recv(t, waiting, "the pending Request"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("pending Request at Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	if err := c.Send([]byte("ECHO x\r\n")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := c.TrySend([]byte("ECHO x\r\n")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("TrySend after Close: %v", err)
	}
	if _, err := c.Request(testCtx(t), []byte("ECHO x\r\n")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Request after Close: %v", err)
	}
	if _, err := c.Receive(testCtx(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	if err := c.Err(); err != client.ErrClosed {
		t.Fatalf("Err after Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(states) != "[Connected Closed]" {
		t.Fatalf("states %v", states)
	}
}

func TestReceiveDrainsAfterClose(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{IsPush: func(m client.Message) bool { return m.Key == "NEWS" }})
	request(t, c, "SUB")
	for i := range 3 {
		ls.srv.Broadcast(fmt.Appendf(nil, "NEWS %d\r\n", i), nil)
	}
	// The reply leaves the server after the pushes: once it is here, they are too.
	request(t, c, "ECHO sync")
	c.Close()
	for i := range 3 {
		m, err := c.Receive(testCtx(t))
		if err != nil || string(m.Body) != strconv.Itoa(i) {
			t.Fatalf("Receive after Close: %q, %v", m.Frame, err)
		}
	}
	if _, err := c.Receive(testCtx(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Receive with nothing left: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	fac := filter.CommandLine()
	for _, tc := range []struct {
		field string
		cfg   client.Config
	}{
		{"Addr", client.Config{Filter: fac}},
		{"Filter", client.Config{Addr: "127.0.0.1:1"}},
		{"Network", client.Config{Addr: "127.0.0.1:1", Filter: fac, Network: "unix"}},
		{"TLS", client.Config{Addr: "127.0.0.1:1", Filter: fac, Network: "udp", TLS: &tls.Config{}}},
		{"MaxRequestLength", client.Config{Addr: "127.0.0.1:1", Filter: fac, MaxRequestLength: -1}},
		{"SendQueueSize", client.Config{Addr: "127.0.0.1:1", Filter: fac, SendQueueSize: -1}},
		{"MaxBackoff", client.Config{Addr: "127.0.0.1:1", Filter: fac, MinBackoff: time.Second, MaxBackoff: time.Millisecond}},
		{"IsPush", client.Config{Addr: "127.0.0.1:1", Filter: fac, ReplyID: echoID, IsPush: func(client.Message) bool { return false }}},
	} {
		_, err := client.Dial(context.Background(), tc.cfg)
		var ce *client.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: error %v", tc.field, err)
		}
	}
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := client.Dial(context.Background(), client.Config{Addr: addr, Filter: filter.CommandLine()}); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	nilFactory := func(int) filter.Filter { return nil }
	if _, err := client.Dial(context.Background(), client.Config{Addr: addr, Filter: nilFactory}); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("Dial with a nil filter: %v", err)
	}
}

// TestLineByLine drives the client against a plain bufio server, pipelining more requests
// than the send queue holds messages.
func TestLineByLine(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	c := dial(t, client.Config{Addr: addr, Filter: filter.CommandLine(), SendQueueSize: 2})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 50 {
				want := fmt.Sprintf("L%d-%d", g, k)
				m, err := c.Request(testCtx(t), []byte(want+"\n"))
				if err != nil {
					t.Errorf("Request: %v", err)
					return
				}
				if m.Key != want {
					t.Errorf("reply %q, want %q", m.Key, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCloseLingers: Close half-closes and reads on, so a reply the server sends only after
// it has seen the client's end still reaches the Request waiting for it.
func TestCloseLingers(t *testing.T) {
	gotLine := make(chan struct{})
	addr := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		close(gotLine)
		if _, err := r.ReadByte(); err != io.EOF { // the client's FIN
			return
		}
		c.Write(line)
	})
	c := dial(t, client.Config{Addr: addr, Filter: filter.CommandLine()})
	reply := make(chan string, 1)
	go func() {
		m, err := c.Request(testCtx(t), []byte("answered after close\r\n"))
		if err != nil {
			reply <- err.Error()
			return
		}
		reply <- strings.TrimSpace(string(m.Frame))
	}()
	recv(t, gotLine, "the request at the server") // so it waits for its reply
	start := time.Now()
	c.Close()
	if got := recv(t, reply, "the reply"); got != "answered after close" {
		t.Fatalf("Request pending at Close: %q", got)
	}
	if d := time.Since(start); d >= client.DefaultCloseLinger {
		t.Fatalf("Close took %v: it waited out its linger though the server closed", d)
	}
}

// TestLargeFrames: frames far larger than one read grow the receive buffer, up to the
// limit.
func TestLargeFrames(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{})
	for _, n := range []int{4 << 10, 40 << 10, 64<<10 - 2} {
		if got := request(t, c, fmt.Sprintf("BIG %d", n)); len(got) != n {
			t.Fatalf("BIG %d: %d bytes", n, len(got))
		}
	}
}

// badFilter breaks the filter contract in the way its mode says.
type badFilter struct{ mode string }

func (f badFilter) Filter(data []byte) (filter.Request, int, error) {
	switch f.mode {
	case "panic":
		panic("boom")
	case "greedy":
		return filter.Request{}, len(data) + 1, nil
	}
	return filter.Request{}, 0, nil // "lazy": always wants more
}

func TestBrokenFilters(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		c.Write(bytes.Repeat([]byte{'x'}, 300))
		buf := make([]byte, 1)
		c.Read(buf) // until the client closes
	})
	for _, tc := range []struct{ mode, want string }{
		{"panic", "panicked: boom"},
		{"greedy", "consumed more bytes than it was given (301 of 300)"},
		{"lazy", "without a complete request"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			fac := func(int) filter.Filter { return badFilter{tc.mode} }
			c := dial(t, client.Config{Addr: addr, Filter: fac, MaxRequestLength: 100})
			recv(t, c.Done(), "the Conn to close")
			if err := c.Err(); !errors.Is(err, client.ErrClosed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err: %v; want it to say %q", err, tc.want)
			}
		})
	}
}

// TestReceiveBackpressure: with the receive queue full the reader waits for Receive; no
// pushed message is lost, and Close still ends a reader that waits.
func TestReceiveBackpressure(t *testing.T) {
	ls := startLineServer(t, nil)
	c := lineClient(t, ls, client.Config{ReceiveQueueSize: 2})
	if got := request(t, c, "PUSH 50"); got != "OK" {
		t.Fatalf("PUSH: %q", got)
	}
	for i := range 50 {
		if got, want := receiveLine(t, c), fmt.Sprintf("EVENT %d", i); got != want {
			t.Fatalf("push %d: %q, want %q", i, got, want)
		}
	}
	if got := request(t, c, "PUSH 50"); got != "OK" {
		t.Fatalf("PUSH: %q", got)
	}
	c.Close() // nobody receives: the reader is (or will be) waiting for room
	if err := c.Err(); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Err: %v", err)
	}
}
