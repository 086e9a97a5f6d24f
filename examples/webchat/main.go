// Command webchat serves examples/chat's rooms to browsers: one supersocket server with
// two listeners shares its rooms between line clients (nc, telnet) and browser pages.
//
//	127.0.0.1:2100   the page: GET / (net/http, an HTML page and a small script, embedded)
//	127.0.0.1:2101   the chat for line clients, over TCP
//	127.0.0.1:2102   the chat for browsers, at ws://127.0.0.1:2102/ws
//
// The protocol is examples/chat's, from package chatroom: LOGIN name, ENTER room,
// SAY text, WHO, ROOMS, LEAVE, QUIT; replies start with OK or ERR, lines the server pushes
// with "*" (* JOIN bob, * MSG bob hi, * LEAVE bob, * QUIT bob ClientClosing). On the
// WebSocket listener (Text and Lines) a text message is a line: the page sends
// "SAY hi" and receives "* MSG bob hi", one message each, without line endings.
//
// The page has an HTTP server of its own rather than being a fallback of the WebSocket
// listener: that listener reads only upgrade requests, with a strict parser on the
// connection's goroutine, and answers anything else with an HTTP error (426 for a plain
// GET); serving files is net/http's job (HEAD, keep-alive, conditional requests, content
// types). So the page's origin (http://127.0.0.1:2100) is not the WebSocket's, and the
// WebSocket listener allows exactly that origin (and http://localhost:2100), plus those
// of -origin: another site's page gets 403.
//
//	go run ./examples/webchat                 # prints the page's URL: open it in two tabs
//	nc 127.0.0.1 2101                          # LOGIN carol, ENTER lobby, SAY hi
//	go run ./examples/chat -client -addr 127.0.0.1:2101 -name dan -room lobby
package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/examples/chat/chatroom"
	"github.com/supersocket-go/supersocket/filter"
)

//go:embed page
var pageFiles embed.FS

// app is the chat server (TCP and WebSocket listeners, one lobby) and the page's HTTP
// server.
type app struct {
	chat   *supersocket.Server[chatroom.User]
	pageLn net.Listener
	web    *http.Server
	served chan error // the result of web.Serve
}

// newApp binds the page's address (its origin is the one the WebSocket listener allows)
// and makes the chat server, not started. origins are further allowed origins.
func newApp(pageAddr, lineAddr, wsAddr string, origins []string) (*app, error) {
	ln, err := net.Listen("tcp", pageAddr)
	if err != nil {
		return nil, err
	}
	page := ln.Addr().(*net.TCPAddr)
	allowed := append([]string{"http://" + page.String()}, origins...)
	if page.IP.IsLoopback() {
		allowed = append(allowed, "http://localhost:"+strconv.Itoa(page.Port))
	}
	chat, err := supersocket.New(supersocket.Config{
		Name: "webchat",
		Listeners: []supersocket.ListenerConfig{
			{Addr: lineAddr},
			{Network: "ws", Addr: wsAddr, WebSocket: &supersocket.WebSocketConfig{
				Text: true, Lines: true, Origins: allowed,
			}},
		},
		Filter:           filter.CommandLine(),
		MaxRequestLength: chatroom.MaxLineLength,
	}, chatroom.NewLobby().Handlers())
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &app{chat: chat, pageLn: ln}, nil
}

// start starts the chat's listeners, then serves the page, which names the WebSocket's
// port.
func (a *app) start() error {
	if err := a.chat.Start(); err != nil {
		a.pageLn.Close()
		return err
	}
	page, err := pageHandler(a.wsAddr().(*net.TCPAddr).Port)
	if err != nil {
		a.pageLn.Close()
		return errors.Join(err, a.chat.Stop())
	}
	a.web = &http.Server{Handler: page, ReadHeaderTimeout: 10 * time.Second}
	a.served = make(chan error, 1)
	go func() { a.served <- a.web.Serve(a.pageLn) }()
	return nil
}

func (a *app) pageURL() string    { return "http://" + a.pageLn.Addr().String() + "/" }
func (a *app) lineAddr() net.Addr { return a.chat.Addrs()[0] }
func (a *app) wsAddr() net.Addr   { return a.chat.Addrs()[1] }

// shutdown stops serving the page, then shuts the chat down gracefully: browsers get a
// close frame (1001), line clients the end of the stream, after what was queued for them.
func (a *app) shutdown(ctx context.Context) error {
	err := a.web.Shutdown(ctx)
	if serr := <-a.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, a.chat.Shutdown(ctx))
}

// pageHandler serves the embedded page: index.html, rendered once with the WebSocket's
// port, at /, and its script and style sheet.
func pageHandler(wsPort int) (http.Handler, error) {
	files, err := fs.Sub(pageFiles, "page")
	if err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(files, "index.html")
	if err != nil {
		return nil, err
	}
	var index bytes.Buffer
	if err := tmpl.Execute(&index, wsPort); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index.Bytes())
	})
	mux.Handle("GET /", http.FileServerFS(files))
	return mux, nil
}

func main() {
	pageAddr := flag.String("addr", "127.0.0.1:2100", "the page's HTTP address")
	lineAddr := flag.String("line-addr", "127.0.0.1:2101", "the chat's TCP address, for line clients (nc)")
	wsAddr := flag.String("ws-addr", "127.0.0.1:2102", "the chat's WebSocket address, for the page (path /ws)")
	origins := flag.String("origin", "", "comma-separated origins allowed besides the page's address (http://name:port when the page is reached by another name)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var extra []string
	for o := range strings.SplitSeq(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			extra = append(extra, o)
		}
	}
	a, err := newApp(*pageAddr, *lineAddr, *wsAddr, extra)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webchat:", err)
		os.Exit(2)
	}
	if err := a.start(); err != nil {
		fmt.Fprintln(os.Stderr, "webchat:", err)
		os.Exit(1)
	}
	fmt.Printf("webchat: open %s (line clients on %s, the page's WebSocket at ws://%s/ws)\n",
		a.pageURL(), a.lineAddr(), a.wsAddr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "webchat:", err)
		os.Exit(1)
	}
}
