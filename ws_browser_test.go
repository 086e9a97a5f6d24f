package supersocket

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/browsertest"
)

// A real browser, headless Chromium driven with chromedp, against WebSocket listeners:
// a page served from 127.0.0.1 talks to a command-line server (text messages, one line
// each: "ECHO hello" → "hello"; a subprotocol chosen) and to a binary echo server with
// permessage-deflate, is refused by a listener that does not allow its origin, and sees
// 1001 when the servers shut down.
//
// Without Chromium the test skips, saying how to install it; where a browser is required
// (CI set to a true value, or SUPERSOCKET_REQUIRE_BROWSER=1, as .ci/run does) it fails
// (internal/browsertest).

// browserPage is the page: it runs the exchanges and reports into window.results.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>supersocket</title></head><body><script>
const q = new URLSearchParams(location.search);
const results = window.results = {textIn: [], binIn: []};
const done = () => { results.ready = results.textIn.length === 5 && results.binIn.length === 2 && results.refused !== undefined; };

const text = new WebSocket(q.get("text"), ["x-unknown", "commandline"]);
text.onopen = () => {
  results.textProtocol = text.protocol;
  text.send("ECHO hello");
  text.send("ECHO héllo ✓");
  text.send("ECHO one\nECHO two");
  text.send("NOPE x");
};
text.onmessage = (e) => { results.textIn.push(typeof e.data === "string" ? e.data : "not a string"); done(); };
text.onclose = (e) => { results.textClose = {code: e.code, clean: e.wasClean}; };

const bin = new WebSocket(q.get("bin"));
bin.binaryType = "arraybuffer";
const small = new Uint8Array(256).map((_, i) => i);
const large = new Uint8Array(100000).map((_, i) => "supersocket"[i % 11].charCodeAt(0));
bin.onopen = () => { results.binExtensions = bin.extensions; bin.send(small); bin.send(large); };
bin.onmessage = (e) => {
  const got = new Uint8Array(e.data), want = results.binIn.length === 0 ? small : large;
  results.binIn.push(got.length === want.length && got.every((b, i) => b === want[i]) ? got.length : "differs: " + got.length);
  done();
};
bin.onclose = (e) => { results.binClose = {code: e.code, clean: e.wasClean}; };

const bad = new WebSocket(q.get("bad"));
bad.onopen = () => { results.refused = false; done(); };
bad.onclose = (e) => { if (results.refused === undefined) { results.refused = e.code; } done(); };
</script></body></html>`

// browserResults is what the page reports.
type browserResults struct {
	Ready         bool
	TextIn        []string
	BinIn         []any
	TextProtocol  string
	BinExtensions string
	Refused       any
	TextClose     *struct {
		Code  int
		Clean bool
	}
	BinClose *struct {
		Code  int
		Clean bool
	}
}

func TestBrowser_WebSocket(t *testing.T) {
	browsertest.Chromium(t) // skip before starting servers when there is no browser
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, browserPage)
	}))
	defer page.Close()

	// The command-line server: a text message is a line; the reply, a line, goes back as
	// a text message without its line ending (Lines).
	lines := startServer(t, Config{Listeners: wsListener(&WebSocketConfig{Text: true, Lines: true,
		Origins: []string{page.URL}, Subprotocols: []string{"commandline"}})}, Handlers[struct{}]{
		Request: func(s *Session[struct{}], r Request) {
			if r.Key == "ECHO" {
				s.Send(r.Body, []byte("\r\n"))
				return
			}
			s.Send([]byte("ERR unknown command: " + r.Key + "\r\n"))
		},
	})
	echo := startServer(t, Config{
		Listeners: []ListenerConfig{
			{Network: "ws", Addr: "127.0.0.1:0", WebSocket: &WebSocketConfig{Origins: []string{page.URL}, Compression: true}},
			{Network: "ws", Addr: "127.0.0.1:0", WebSocket: &WebSocketConfig{Origins: []string{"https://elsewhere.example"}}},
		},
		Filter:           func(int) filter.Filter { return wholeMessage{} },
		MaxRequestLength: 1 << 20,
	}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	q := url.Values{
		"text": {"ws://" + addrOf(lines) + "/ws"},
		"bin":  {"ws://" + echo.Addrs()[0].String() + "/ws"},
		"bad":  {"ws://" + echo.Addrs()[1].String() + "/ws"},
	}

	browser := browsertest.Start(t, time.Minute)
	read := func(until string) browserResults {
		t.Helper()
		if _, err := chromedp.Run(browser, chromedp.Poll[chromedp.Void](until, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			partial, _ := chromedp.Run(browser, chromedp.Evaluate[string](`JSON.stringify(window.results)`))
			t.Fatalf("waiting for %s: %v (results so far: %s)", until, err, partial)
		}
		r, err := chromedp.Run(browser, chromedp.Evaluate[browserResults](`window.results`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := chromedp.Do(browser, chromedp.Navigate(page.URL+"/?"+q.Encode())); err != nil {
		t.Fatal(err)
	}
	r := read("window.results && window.results.ready")
	if got, want := fmt.Sprint(r.TextIn), fmt.Sprint([]string{"hello", "héllo ✓", "one", "two", "ERR unknown command: NOPE"}); got != want {
		t.Errorf("text replies %s, want %s", got, want)
	}
	if got := fmt.Sprint(r.BinIn); got != "[256 100000]" {
		t.Errorf("binary echoes %s, want [256 100000]", got)
	}
	if r.TextProtocol != "commandline" {
		t.Errorf("subprotocol %q chosen, want commandline", r.TextProtocol)
	}
	if want := "permessage-deflate; server_no_context_takeover; client_no_context_takeover"; r.BinExtensions != want {
		t.Errorf("extensions %q, want %q", r.BinExtensions, want)
	}
	if r.Refused != float64(1006) {
		t.Errorf("a listener that does not allow the page's origin: %v, want the connection refused (1006)", r.Refused)
	}

	shut := make(chan error, 2)
	for _, srv := range []*Server[struct{}]{lines, echo} {
		go func() { shut <- srv.Shutdown(t.Context()) }()
	}
	r = read("window.results.textClose && window.results.binClose")
	for name, c := range map[string]*struct {
		Code  int
		Clean bool
	}{"text": r.TextClose, "binary": r.BinClose} {
		if c.Code != 1001 || !c.Clean {
			t.Errorf("%s socket on Shutdown: close code %d, clean %v; want 1001, clean", name, c.Code, c.Clean)
		}
	}
	for range 2 {
		if err := recv(t, shut, "Shutdown"); err != nil {
			t.Error(err)
		}
	}
}
