package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
	"github.com/supersocket-go/supersocket/internal/cli"
	"github.com/supersocket-go/supersocket/metrics"
)

func discardLogger() *slog.Logger        { return slog.New(slog.DiscardHandler) }
func newHist() *metrics.RequestHistogram { return metrics.NewRequestHistogram() }

// listenEvent is a "listening" log line: which server, on which address.
type listenEvent struct{ server, addr string }

// serveLogs collects the command's logs and reports its listening lines and the metrics
// address, in text or JSON format.
type serveLogs struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan listenEvent
	metrics   chan string
}

func newServeLogs() *serveLogs {
	return &serveLogs{listening: make(chan listenEvent, 64), metrics: make(chan string, 4)}
}

var (
	textListenRE  = regexp.MustCompile(`msg=listening server=(\S+) addr=(\S+)`)
	textMetricsRE = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
	jsonListenRE  = regexp.MustCompile(`"msg":"listening","server":"([^"]+)","addr":"([^"]+)"`)
	jsonMetricsRE = regexp.MustCompile(`"msg":"serving metrics","addr":"([^"]+)"`)
)

func (w *serveLogs) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	// A child process's stderr arrives through a pipe: one write may hold several lines.
	for _, re := range []*regexp.Regexp{textListenRE, jsonListenRE} {
		for _, m := range re.FindAllSubmatch(p, -1) {
			select {
			case w.listening <- listenEvent{string(m[1]), string(m[2])}:
			default:
			}
		}
	}
	for _, re := range []*regexp.Regexp{textMetricsRE, jsonMetricsRE} {
		for _, m := range re.FindAllSubmatch(p, -1) {
			select {
			case w.metrics <- string(m[1]):
			default:
			}
		}
	}
	return len(p), nil
}

func (w *serveLogs) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// running is the command running in-process.
type running struct {
	logs      *serveLogs
	metrics   string        // the metrics address, "" when off
	listeners []listenEvent // in the order they were logged
	cancel    context.CancelFunc
	status    chan int
}

// startServe runs the command until stop (or the test's end) and waits until it has
// logged the metrics address (when withMetrics) and n listening lines.
func startServe(t *testing.T, withMetrics bool, n int, args ...string) *running {
	t.Helper()
	r := &running{logs: newServeLogs(), status: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.status <- run(ctx, args, r.logs) }()
	t.Cleanup(func() { r.stop(t) })
	timeout := time.After(10 * time.Second)
	for withMetrics && r.metrics == "" || len(r.listeners) < n {
		select {
		case a := <-r.logs.metrics:
			r.metrics = a
		case ev := <-r.logs.listening:
			r.listeners = append(r.listeners, ev)
		case code := <-r.status:
			r.status <- code
			t.Fatalf("exited with %d before listening; logs:\n%s", code, r.logs)
		case <-timeout:
			t.Fatalf("not listening after 10s; logs:\n%s", r.logs)
		}
	}
	return r
}

// stop cancels the command and returns its exit status; later calls return it again.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.status:
		r.status <- code
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("command did not stop within 10s; logs:\n%s", r.logs)
		return -1
	}
}

// httpGet fetches a URL of the metrics endpoint without keeping connections.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// sample finds the value of the series name{labels…} in the text exposition format.
func metricSample(body, name string, labels map[string]string) (float64, bool) {
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		series := line[:sp]
		ok := true
		for k, v := range labels {
			if !strings.Contains(series, k+"="+strconv.Quote(v)) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		return v, err == nil
	}
	return 0, false
}

func mustSample(t *testing.T, body, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metricSample(body, name, labels)
	if !ok {
		t.Fatalf("no sample %s%v in:\n%s", name, labels, body)
	}
	return v
}

// eventually scrapes until every want holds, or fails after 10s. Bytes out are counted
// after the write and the latency after the handler, so both may trail the reply the
// client has read; there is no event to wait on but the scrape itself.
func eventually(t *testing.T, url string, want map[string]float64, labels func(string) map[string]string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := httpGet(t, url)
		var missing []string
		for key, v := range want {
			name, _, _ := strings.Cut(key, "|")
			if got, ok := metricSample(body, name, labels(key)); !ok || got != v {
				missing = append(missing, fmt.Sprintf("%s = %v (ok %v), want %v", key, got, ok, v))
			}
		}
		if len(missing) == 0 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s:\n%s\n\n%s", strings.Join(missing, "\n"), body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeConfigFileEndToEnd is the done-when, in-process: two servers from one
// file on their own ports (one with a TCP and a UDP listener), clients talking to both,
// the counters moving on /metrics, /status and /debug/pprof/ answering, and a clean exit.
func TestServeConfigFileEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := writeFile(t, `log_level: debug
servers:
  - name: lines
    app: commandline
    listeners:
      - addr: 127.0.0.1:0
  - name: packets
    app: echo
    listeners:
      - addr: 127.0.0.1:0
      - addr: 127.0.0.1:0
        network: udp
    max_request_length: 1024
`)
	r := startServe(t, true, 3, "serve", "-config", path, "-metrics-addr", "127.0.0.1:0")
	want := []listenEvent{{server: "lines"}, {server: "packets"}, {server: "packets"}}
	for i, ev := range r.listeners {
		if ev.server != want[i].server {
			t.Fatalf("listening lines %v, want servers lines, packets, packets", r.listeners)
		}
	}
	if strings.Index(r.logs.String(), "serving metrics") > strings.Index(r.logs.String(), "msg=listening") {
		t.Errorf("the metrics endpoint started after a server:\n%s", r.logs)
	}
	linesAddr, tcpAddr, udpAddr := r.listeners[0].addr, r.listeners[1].addr, r.listeners[2].addr
	base := "http://" + r.metrics
	byServer := func(key string) map[string]string {
		_, rest, _ := strings.Cut(key, "|")
		server, reason, _ := strings.Cut(rest, "|")
		labels := map[string]string{"server": server}
		if reason != "" {
			labels["reason"] = reason
		}
		return labels
	}

	// Before any traffic: every counter at 0.
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, s := range []string{"lines", "packets"} {
		for _, name := range []string{"supersocket_requests_total", "supersocket_received_bytes_total", "supersocket_sent_bytes_total", "supersocket_accepted_total"} {
			if v := mustSample(t, body, name, map[string]string{"server": s}); v != 0 {
				t.Errorf("%s{server=%q} = %v before any traffic", name, s, v)
			}
		}
		if v := mustSample(t, body, "supersocket_running", map[string]string{"server": s}); v != 1 {
			t.Errorf("running{server=%q} = %v", s, v)
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "supersocket_request_duration_seconds_count"} {
		mustSample(t, body, name, nil)
	}

	// Traffic: two lines to the commandline server, a packet over TCP and one over UDP
	// to the echo server.
	lc := dial(t, linesAddr)
	io.WriteString(lc, "ECHO hi\r\nADD 1 2\r\n") // 18 bytes in; "hi\r\n3\r\n" is 7 out
	lr := bufio.NewReader(lc)
	for _, want := range []string{"hi\r\n", "3\r\n"} {
		if got, err := lr.ReadString('\n'); err != nil || got != want {
			t.Fatalf("commandline: got %q, %v; want %q", got, err, want)
		}
	}
	tc := dial(t, tcpAddr)
	tc.Write(echoPacket(1, "hello")) // 10 bytes each way
	reply := make([]byte, 10)
	if _, err := io.ReadFull(tc, reply); err != nil || string(reply[5:]) != "hello" {
		t.Fatalf("echo tcp: got %q, %v", reply, err)
	}
	uc, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	uc.Write(echoPacket(2, "udp!")) // 9 bytes each way
	n, err := uc.Read(reply)
	if err != nil || string(reply[5:n]) != "udp!" {
		t.Fatalf("echo udp: got %q, %v", reply[:n], err)
	}

	body = eventually(t, base+"/metrics", map[string]float64{
		"supersocket_requests_total|lines":                   2,
		"supersocket_requests_total|packets":                 2,
		"supersocket_received_bytes_total|lines":             18,
		"supersocket_received_bytes_total|packets":           19,
		"supersocket_sent_bytes_total|lines":                 7,
		"supersocket_sent_bytes_total|packets":               19,
		"supersocket_accepted_total|lines":                   1,
		"supersocket_accepted_total|packets":                 2,
		"supersocket_sessions|lines":                         1,
		"supersocket_sessions|packets":                       2,
		"supersocket_request_duration_seconds_count|lines":   2,
		"supersocket_request_duration_seconds_count|packets": 2,
		"supersocket_session_closes_total|lines|TimeOut":     0,
	}, byServer)
	if v := mustSample(t, body, "supersocket_listener_accepted_total", map[string]string{"server": "packets", "network": "udp", "addr": udpAddr}); v != 1 {
		t.Errorf("listener_accepted_total{packets, udp} = %v, want 1", v)
	}

	// A session closed by the server is counted by reason.
	io.WriteString(lc, "QUIT\r\n")
	if got, _ := lr.ReadString('\n'); got != "BYE\r\n" {
		t.Fatalf("QUIT: got %q", got)
	}
	eventually(t, base+"/metrics", map[string]float64{
		"supersocket_session_closes_total|lines|ServerClosing": 1,
		"supersocket_sessions|lines":                           0,
	}, byServer)

	// /status: both servers, their listeners and counters.
	code, body = httpGet(t, base+"/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	if len(doc.Servers) != 2 || doc.PID != os.Getpid() {
		t.Fatalf("/status: %+v", doc)
	}
	lines, packets := doc.Servers[0], doc.Servers[1]
	if lines.Name != "lines" || lines.App != "commandline" || lines.State != "Running" || lines.Started == nil ||
		lines.Requests != 3 || lines.BytesIn != 24 || lines.Closes["ServerClosing"] != 1 {
		t.Errorf("lines: %+v", lines)
	}
	wantListeners := []listenerStatus{
		{Network: "tcp", Addr: tcpAddr, Accepted: 1, Sessions: 1},
		{Network: "udp", Addr: udpAddr, Accepted: 1, Sessions: 1},
	}
	if packets.Name != "packets" || packets.App != "echo" || packets.State != "Running" || packets.MaxRequestLength != 1024 ||
		packets.Requests != 2 || fmt.Sprint(packets.Listeners) != fmt.Sprint(wantListeners) {
		t.Errorf("packets: %+v\nwant listeners %+v", packets, wantListeners)
	}
	if len(lines.Listeners) != 1 || lines.Listeners[0].Addr != linesAddr || lines.Listeners[0].Network != "tcp" {
		t.Errorf("lines listeners: %+v", lines.Listeners)
	}

	// pprof, on the same mux.
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1", "/"} {
		if code, body := httpGet(t, base+p); code != http.StatusOK || body == "" {
			t.Errorf("GET %s: %d", p, code)
		}
	}

	tc.Close()
	if code := r.stop(t); code != cli.ExitOK {
		t.Fatalf("exit %d after cancel:\n%s", code, r.logs)
	}
	// Everything is closed: every port can be bound again.
	for _, a := range []string{linesAddr, tcpAddr, r.metrics} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s still bound after exit: %v", a, err)
			continue
		}
		ln.Close()
	}
	if pc, err := net.ListenPacket("udp", udpAddr); err != nil {
		t.Errorf("udp %s still bound after exit: %v", udpAddr, err)
	} else {
		pc.Close()
	}
}

// TestServeConfigBrokenFileExit2: a broken file exits 2 with a message naming the file,
// the line and the key, and starts nothing, the metrics endpoint included.
func TestServeConfigBrokenFileExit2(t *testing.T) {
	path := writeFile(t, `metrics_addr: 127.0.0.1:0
servers:
  - name: fine
    app: commandline
    listeners:
      - addr: 127.0.0.1:0
  - name: broken
    app: echo
    listeners:
      - addr: 127.0.0.1:0
    max_request_length: -5
`)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-config", path}, &out); code != cli.ExitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, cli.ExitUsage, &out)
	}
	want := path + ":11: servers[1].max_request_length: must be positive, got -5"
	if !strings.Contains(out.String(), want) {
		t.Errorf("message does not say %q:\n%s", want, &out)
	}
	if strings.Contains(out.String(), "listening") || strings.Contains(out.String(), "serving metrics") {
		t.Errorf("something started:\n%s", &out)
	}
}

// TestServeConfigPortTakenExit1: when one server cannot bind, nothing starts — every
// listening socket is bound before any server starts (they are held for a hand-over),
// and the ones bound are closed — and the command exits 1, naming the server and address.
func TestServeConfigPortTakenExit1(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	first := freePort(t)
	path := writeFile(t, fmt.Sprintf(`servers:
  - name: first
    app: commandline
    listeners:
      - addr: %s
  - name: second
    app: echo
    listeners:
      - addr: %s
`, first, taken.Addr()))
	logs := newServeLogs()
	code := run(context.Background(), []string{"serve", "-config", path, "-metrics-addr", "127.0.0.1:0"}, logs)
	if code != cli.ExitError {
		t.Fatalf("exit %d, want %d:\n%s", code, cli.ExitError, logs)
	}
	if !strings.Contains(logs.String(), "second") || !strings.Contains(logs.String(), taken.Addr().String()) {
		t.Errorf("the message does not name the server and address:\n%s", logs)
	}
	if strings.Contains(logs.String(), "listening") || strings.Contains(logs.String(), "serving metrics") {
		t.Errorf("something started:\n%s", logs)
	}
	ln, err := net.Listen("tcp", first)
	if err != nil {
		t.Fatalf("%s, bound for the first server, still bound after exit 1: %v", first, err)
	}
	ln.Close()
}

// freePort returns a 127.0.0.1 address with a port nothing listens on (just now).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeMetricsAddrTakenExit1: the metrics endpoint binds first; when it cannot,
// nothing starts.
func TestServeMetricsAddrTakenExit1(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	logs := newServeLogs()
	code := run(context.Background(), []string{"serve", "-addr", "127.0.0.1:0", "-metrics-addr", taken.Addr().String()}, logs)
	if code != cli.ExitError {
		t.Fatalf("exit %d, want %d:\n%s", code, cli.ExitError, logs)
	}
	if !strings.Contains(logs.String(), "metrics") || strings.Contains(logs.String(), "listening") {
		t.Errorf("output:\n%s", logs)
	}
}

// TestServeFlagsMetricsJSONLogs: the single-server flag path with -metrics-addr and
// -log-format json: every log line is JSON, and /status shows the one server.
func TestServeFlagsMetricsJSONLogs(t *testing.T) {
	r := startServe(t, true, 1, "serve", "-app", "echo", "-name", "solo", "-addr", "127.0.0.1:0",
		"-metrics-addr", "127.0.0.1:0", "-log-format", "json")
	_, body := httpGet(t, "http://"+r.metrics+"/status")
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].Name != "solo" || doc.Servers[0].App != "echo" ||
		len(doc.Servers[0].Listeners) != 1 || doc.Servers[0].Listeners[0].Addr != r.listeners[0].addr {
		t.Fatalf("/status: %s", body)
	}
	if code := r.stop(t); code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	for line := range strings.Lines(r.logs.String()) {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}

// TestStatusStoppedServer: a server that is not running shows its configured listeners.
func TestStatusStoppedServer(t *testing.T) {
	srv, err := apps.Echo(supersocket.Config{Name: "e", Listeners: []supersocket.ListenerConfig{{Addr: "127.0.0.1:0"}}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	doc := status([]namedServer{{name: "e", app: "echo", srv: srv}}, now.Add(-time.Minute), now)
	s := doc.Servers[0]
	if s.State != "NotStarted" || s.Started != nil || len(s.Listeners) != 1 || s.Listeners[0].Addr != "127.0.0.1:0" ||
		s.Listeners[0].Network != "tcp" || len(s.Closes) != 9 || doc.UptimeSeconds != 60 {
		t.Fatalf("%+v", doc)
	}
}

// fakeReloader is an apps.Server whose ReloadTLS is counted.
type fakeReloader struct {
	apps.Server
	calls int
	err   error
}

func (f *fakeReloader) ReloadTLS() error { f.calls++; return f.err }

func TestServerGroupReloadsAll(t *testing.T) {
	a, b, c := &fakeReloader{}, &fakeReloader{err: errors.New("bad key")}, &fakeReloader{}
	err := serverGroup{{name: "a", srv: a}, {name: "b", srv: b}, {name: "c", srv: c}}.ReloadTLS()
	if a.calls != 1 || b.calls != 1 || c.calls != 1 {
		t.Fatalf("calls %d %d %d", a.calls, b.calls, c.calls)
	}
	if err == nil || err.Error() != "b: bad key" {
		t.Fatalf("err %v", err)
	}
}

// TestSignalsConfigFile runs the real command on a two-server file in a child process:
// SIGHUP reloads (the process lives on), SIGTERM shuts both servers down, exit 0.
func TestSignalsConfigFile(t *testing.T) {
	path := writeFile(t, `servers:
  - app: commandline
    listeners: [{addr: "127.0.0.1:0"}]
  - app: echo
    listeners: [{addr: "127.0.0.1:0"}]
`)
	cmd := exec.Command(os.Args[0], "serve", "-config", path)
	cmd.Env = append(os.Environ(), "SUPERSOCKET_RUN_MAIN=1")
	logs := newServeLogs()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var addrs []string
	for len(addrs) < 2 {
		select {
		case ev := <-logs.listening:
			addrs = append(addrs, ev.addr)
		case err := <-exited:
			t.Fatalf("exited early: %v\n%s", err, logs)
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("never listened:\n%s", logs)
		}
	}
	cmd.Process.Signal(syscall.SIGHUP)
	c := dial(t, addrs[0])
	io.WriteString(c, "ECHO after hup\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "after hup\r\n" {
		t.Fatalf("after SIGHUP: %q, %v\n%s", line, err, logs)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("did not exit after SIGTERM:\n%s", logs)
	}
	if n := strings.Count(logs.String(), "msg=stopped"); n != 2 {
		t.Errorf("%d servers logged stopped, want 2:\n%s", n, logs)
	}
}
