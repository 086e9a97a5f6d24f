package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/supersocket-go/supersocket/client"
	"github.com/supersocket-go/supersocket/filter"
	"github.com/supersocket-go/supersocket/internal/browsertest"
)

var screenshot = flag.String("screenshot", "", "TestBrowsersAndLineClient writes a PNG of ada's page, with lines from browsers and from a line client, to this file")

// TestMain checks that no goroutine outlives the tests: the chat server's, the page's
// HTTP server's, chromedp's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the example on free loopback ports, until the test ends.
func start(t *testing.T) *app {
	t.Helper()
	a, err := newApp("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

// TestPage: the page names the WebSocket's port; its script and style sheet are served.
func TestPage(t *testing.T) {
	a := start(t)
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	get := func(path string, status int, contentType, contains string) {
		t.Helper()
		resp, err := c.Get(a.pageURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != status || !strings.Contains(resp.Header.Get("Content-Type"), contentType) ||
			!strings.Contains(string(body), contains) {
			t.Errorf("GET /%s: %s, %q, %.80q; want %d, %s, containing %q", path, resp.Status,
				resp.Header.Get("Content-Type"), body, status, contentType, contains)
		}
	}
	port := strconv.Itoa(a.wsAddr().(*net.TCPAddr).Port)
	get("", http.StatusOK, "text/html", `<meta name="chat-ws-port" content="`+port+`">`)
	get("chat.js", http.StatusOK, "javascript", "new WebSocket(wsURL)") // text/ or application/, by the system's MIME table
	get("style.css", http.StatusOK, "text/css", "#log")
	get("missing", http.StatusNotFound, "text/plain", "not found")
}

// TestOrigins: the WebSocket listener takes the page's origin (by address and as
// localhost) and refuses another site's.
func TestOrigins(t *testing.T) {
	a := start(t)
	url := "ws://" + a.wsAddr().String() + "/ws"
	port := strconv.Itoa(a.pageLn.Addr().(*net.TCPAddr).Port)
	for i, origin := range []string{strings.TrimSuffix(a.pageURL(), "/"), "http://localhost:" + port} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := client.Dial(ctx, client.Config{Addr: url, Filter: filter.CommandLine(),
			WebSocket: client.WebSocketConfig{Origin: origin, Text: true}})
		if err != nil {
			cancel()
			t.Fatalf("origin %s: %v", origin, err)
		}
		name := "u" + strconv.Itoa(i)
		m, err := c.Request(ctx, []byte("LOGIN "+name))
		if got := string(m.Frame); err != nil || got != "OK welcome "+name {
			t.Errorf("origin %s: LOGIN: %q, %v; want %q", origin, got, err, "OK welcome "+name)
		}
		c.Close()
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, client.Config{Addr: url, Filter: filter.CommandLine(),
		WebSocket: client.WebSocketConfig{Origin: "http://elsewhere.example"}})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Errorf("another site's origin: %v, want the handshake refused with 403", err)
	}
}

// TestBrowsersAndLineClient: two pages in headless Chromium and a TCP line client in one
// room. What each says reaches the other two; joining, leaving and quitting, by a page
// or by the line client, are shown to the others.
func TestBrowsersAndLineClient(t *testing.T) {
	a := start(t)
	browser := browsertest.Start(t, 2*time.Minute)
	ada := openPage(t, browser, a.pageURL(), "ada")
	bob := openPage(t, browser, a.pageURL(), "bob")

	ada.login("ada")
	ada.waitView("enter")
	ada.enter("lobby")
	ada.waitMembers("ada")

	// A taken name is refused on the page, which stays at its login box.
	bob.login("ada")
	bob.waitFor("the error", `() => document.getElementById("error").textContent === "name ada is taken"`)
	bob.waitView("login")
	bob.login("bob")
	bob.waitView("enter")
	bob.waitFor("lobby in the room list", `() => document.getElementById("rooms").textContent === "lobby · 1"`)
	bob.do(chromedp.Click(chromedp.CSS("#rooms button")))
	bob.waitView("chat")
	ada.expectLog("bob joined")

	carol := dialLine(t, a.lineAddr().String())
	carol.do("LOGIN carol", "OK welcome carol")
	carol.do("ENTER lobby", "OK entered lobby")
	ada.expectLog("carol joined")
	bob.expectLog("carol joined")
	ada.waitMembers("ada, bob, carol")
	bob.waitMembers("ada, bob, carol")

	ada.say("hi all, ada here, in a browser")
	ada.expectLog("ada: hi all, ada here, in a browser")
	bob.expectLog("ada: hi all, ada here, in a browser")
	carol.expect("* MSG ada hi all, ada here, in a browser")

	carol.do("SAY hello from nc ✓", "OK")
	ada.expectLog("carol: hello from nc ✓")
	bob.expectLog("carol: hello from nc ✓")

	bob.say("bob too, from another tab")
	ada.expectLog("bob: bob too, from another tab")
	bob.expectLog("bob: bob too, from another tab")
	carol.expect("* MSG bob bob too, from another tab")
	carol.do("WHO", "OK ada bob carol")

	if *screenshot != "" {
		png, err := chromedp.Run(ada.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A page leaves: back to its room list; the page and the line client left are told.
	bob.do(chromedp.Click(chromedp.ID("leave")))
	bob.waitView("enter")
	ada.expectLog("bob left")
	carol.expect("* LEAVE bob")
	ada.waitMembers("ada, carol")

	// The line client leaves and comes back.
	carol.do("LEAVE", "OK left lobby")
	ada.expectLog("carol left")
	carol.do("ENTER lobby", "OK entered lobby")
	ada.expectLog("carol joined")

	// The page goes back in, from its room list.
	bob.waitFor("lobby in the room list", `() => document.getElementById("rooms").textContent === "lobby · 2"`)
	bob.do(chromedp.Click(chromedp.CSS("#rooms button")))
	bob.waitView("chat")
	bob.expectLog() // a new room, an empty log
	bob.waitMembers("ada, bob, carol")
	ada.expectLog("bob joined")
	carol.expect("* JOIN bob")

	// The page quits (QUIT, and the server closes its WebSocket): back to the login box,
	// without an error; the others see it quit.
	bob.do(chromedp.Click(chromedp.ID("quit")))
	bob.waitView("login")
	bob.waitFor("no error, logged out", `() => document.getElementById("error").hidden &&
		document.getElementById("status").textContent === "not logged in"`)
	ada.expectLog("bob quit (ServerClosing)")
	carol.expect("* QUIT bob ServerClosing")

	// The line client's connection ends.
	carol.conn.Close()
	ada.expectLog("carol quit (ClientClosing)")
	ada.waitMembers("ada")
}

// page is a browser tab showing the page.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
	log  []string // what its message list must show
}

// openPage opens a tab of browser on url; it closes when the test ends.
func openPage(t *testing.T, browser context.Context, url, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// The first action creates the tab, which lives as long as its context: not bounded.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(720, 440), chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &page{t: t, name: name, ctx: ctx}
	p.waitView("login")
	return p
}

// do runs the steps, bounded.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s's page: %v", p.name, err)
	}
}

// waitFor waits until fn, a JavaScript function of args, returns true: it is evaluated
// again whenever the page's DOM changes, for 10 s at most.
func (p *page) waitFor(what, fn string, args ...any) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.PollFunction[bool](fn, chromedp.WithPollingArgs(args...),
		chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		state, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify({
			views: ["login", "enter", "chat"].filter((id) => !document.getElementById(id).hidden),
			error: document.getElementById("error").textContent,
			members: document.getElementById("members").textContent,
			log: [...document.querySelectorAll("#log li")].map((li) => li.textContent)})`))
		p.t.Fatalf("%s's page: waiting for %s: %v; the page: %s", p.name, what, err, state)
	}
}

func (p *page) waitView(id string) {
	p.t.Helper()
	p.waitFor("the "+id+" view", `(id) => !document.getElementById(id).hidden`, id)
}

func (p *page) waitMembers(list string) {
	p.t.Helper()
	p.waitFor("members "+list, `(list) => document.getElementById("members").textContent === list`, list)
}

// expectLog waits until the message list shows the lines expected so far, then lines,
// and nothing else; the list starts empty in each room.
func (p *page) expectLog(lines ...string) {
	p.t.Helper()
	if len(lines) == 0 {
		p.log = nil
	}
	p.log = append(p.log, lines...)
	// want's default: chromedp passes an empty array as undefined.
	p.waitFor(strconv.Quote(strings.Join(p.log, " | ")), `(want = []) => JSON.stringify(
		[...document.querySelectorAll("#log li")].map((li) => li.textContent)) === JSON.stringify(want)`,
		p.log)
}

func (p *page) login(name string) {
	p.t.Helper()
	p.do(chromedp.SetValue(chromedp.ID("name"), name), chromedp.Click(chromedp.CSS("#login > button")))
}

func (p *page) enter(room string) {
	p.t.Helper()
	p.do(chromedp.SetValue(chromedp.ID("room"), room), chromedp.Click(chromedp.CSS("#enter > button")))
	p.waitView("chat")
	p.expectLog()
}

// say types text and sends it.
func (p *page) say(text string) {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.ID("text"), text), chromedp.Click(chromedp.CSS("#say > button")))
}

// lineClient is a TCP client of the chat, as nc is: it writes lines and reads every line
// the server sends, replies and pushed lines alike, in order.
type lineClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &lineClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// expect reads the next line, waiting 10 s at most, and checks it.
func (c *lineClient) expect(want string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("line client: waiting for %q: %v", want, err)
	}
	if got := strings.TrimRight(line, "\r\n"); got != want {
		c.t.Fatalf("line client: got %q, want %q", got, want)
	}
}

// do sends a command line and checks the next line, its reply.
func (c *lineClient) do(line, reply string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("line client: %s: %v", line, err)
	}
	c.expect(reply)
}
