package supersocket

import (
	"cmp"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket/filter"
)

func TestConfig_InvalidFieldIsNamed(t *testing.T) {
	ok := loopback()
	cases := []struct {
		field string
		cfg   Config
	}{
		{"Listeners[0].Addr", Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1"}}}},
		{"Listeners[0].Addr", Config{Listeners: []ListenerConfig{{Addr: ""}}}},
		{"Listeners[1].Addr", Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}, {Addr: "127.0.0.1:70000"}}}},
		{"Listeners[0].Addr", Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:-1"}}}},
		{"Listeners[0].Network", Config{Listeners: []ListenerConfig{{Network: "unix", Addr: "127.0.0.1:0"}}}},
		{"Listeners[0].Network", Config{Listeners: []ListenerConfig{{Network: "TCP", Addr: "127.0.0.1:0"}}}},
		{"MaxConnections", Config{Listeners: ok, MaxConnections: -1}},
		{"MaxRequestLength", Config{Listeners: ok, MaxRequestLength: -1}},
		{"ReceiveBufferSize", Config{Listeners: ok, ReceiveBufferSize: -1}},
		{"ReceiveBufferSize", Config{Listeners: ok, ReceiveBufferSize: 10}},
		{"SendQueueSize", Config{Listeners: ok, SendQueueSize: -5}},
		{"SendQueueBytes", Config{Listeners: ok, SendQueueBytes: -5}},
		{"SocketReadBuffer", Config{Listeners: ok, SocketReadBuffer: -1}},
		{"SocketWriteBuffer", Config{Listeners: ok, SocketWriteBuffer: -1}},
		{"IdleTimeout", Config{Listeners: ok, IdleTimeout: -time.Second}},
		{"IdleCheckInterval", Config{Listeners: ok, IdleTimeout: time.Second, IdleCheckInterval: -time.Second}},
		{"SessionIDPrefix", Config{Listeners: ok, SessionIDPrefix: "node a-"}},
		{"SessionIDPrefix", Config{Listeners: ok, SessionIDPrefix: strings.Repeat("a", 65)}},
		{"ReceiveBufferSize", Config{Listeners: ok, ReceiveBufferSize: 2 << 30}},
		{"Engine", Config{Listeners: ok, Engine: "epol"}},
		{"Engine", Config{Listeners: ok, Engine: "Goroutine"}},
	}
	h := Handlers[struct{}]{Request: echoFrame[struct{}]}
	for _, tc := range cases {
		srv, err := New(tc.cfg, h)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: New returned (%v, %v), want a *ConfigError", tc.field, srv, err)
			continue
		}
		if ce.Field != tc.field || ce.Problem == "" {
			t.Errorf("ConfigError{Field: %q, Problem: %q}, want Field %q", ce.Field, ce.Problem, tc.field)
		}
		if msg := err.Error(); !strings.Contains(msg, tc.field) {
			t.Errorf("error %q does not name %s", msg, tc.field)
		}
		if srv != nil {
			t.Errorf("%s: New returned a server with its error", tc.field)
		}
	}

	_, err := New(Config{Listeners: ok}, Handlers[struct{}]{})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Handlers.Request" {
		t.Errorf("New without a Request handler: %v, want a ConfigError naming Handlers.Request", err)
	}
}

func TestConfig_DefaultsAreFilledIn(t *testing.T) {
	srv, err := New(Config{Listeners: []ListenerConfig{{Addr: "127.0.0.1:0"}}}, Handlers[struct{}]{Request: echoFrame[struct{}]})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Config()
	checks := []struct {
		name      string
		got, want any
	}{
		{"Name", c.Name, DefaultName},
		{"Listeners[0].Network", c.Listeners[0].Network, "tcp"},
		{"MaxConnections", c.MaxConnections, DefaultMaxConnections},
		{"MaxRequestLength", c.MaxRequestLength, DefaultMaxRequestLength},
		{"ReceiveBufferSize", c.ReceiveBufferSize, DefaultReceiveBufferSize},
		{"SendQueueSize", c.SendQueueSize, DefaultSendQueueSize},
		{"SendQueueBytes", c.SendQueueBytes, DefaultSendQueueBytes},
		{"SendTimeout", c.SendTimeout, DefaultSendTimeout},
		{"CloseLinger", c.CloseLinger, DefaultCloseLinger},
		{"KeepAlive", c.KeepAlive, DefaultKeepAlive},
		{"IdleTimeout", c.IdleTimeout, time.Duration(0)},
		{"Nagle", c.Nagle, false},
		{"Logger", c.Logger, slog.Default()},
		{"Engine", c.Engine, cmp.Or(defaultEngine, EngineGoroutine)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("default %s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.Filter == nil {
		t.Fatal("default Filter is nil")
	}
	// The default filter is CommandLine.
	req, n, err := c.Filter(c.MaxRequestLength).Filter([]byte("KEY a b\r\n"))
	if err != nil || n != 9 || req.Key != "KEY" || string(req.Body) != "a b" {
		t.Errorf("default filter framed (%q, %q, %d, %v), want a command line", req.Key, req.Body, n, err)
	}
	if c.CloseOnSendTimeout || c.AllowConnect != nil || c.OnRefused != nil {
		t.Errorf("optional hooks and flags are set by default")
	}
}

func TestConfig_IdleCheckIntervalDefault(t *testing.T) {
	for _, tc := range []struct{ idle, want time.Duration }{
		{time.Second, 250 * time.Millisecond},
		{20 * time.Millisecond, 10 * time.Millisecond}, // at least 10ms
		{time.Hour, time.Second},                       // at most 1s
	} {
		srv := newServer(t, Config{IdleTimeout: tc.idle}, Handlers[struct{}]{Request: echoFrame[struct{}]})
		if got := srv.Config().IdleCheckInterval; got != tc.want {
			t.Errorf("IdleTimeout %v: IdleCheckInterval %v, want %v", tc.idle, got, tc.want)
		}
	}
}

func TestConfig_ExplicitValuesKeptAndListenersCopied(t *testing.T) {
	listeners := []ListenerConfig{{Network: "tcp4", Addr: "127.0.0.1:0"}}
	f := filter.FixedSize(8)
	cfg := Config{
		Name: "mine", Listeners: listeners, Filter: f, MaxConnections: 7, MaxRequestLength: 100,
		ReceiveBufferSize: 128, SendQueueSize: 3, SendQueueBytes: 300, SendTimeout: -1,
		CloseLinger: -1, IdleTimeout: time.Minute, IdleCheckInterval: time.Second, KeepAlive: -1, Nagle: true,
	}
	srv := newServer(t, cfg, Handlers[struct{}]{Request: echoFrame[struct{}]})
	listeners[0].Addr = "changed:1"
	c := srv.Config()
	if c.Listeners[0] != (ListenerConfig{Network: "tcp4", Addr: "127.0.0.1:0"}) {
		t.Errorf("the server's listeners changed with the caller's slice: %+v", c.Listeners)
	}
	if c.Name != "mine" || c.MaxConnections != 7 || c.MaxRequestLength != 100 || c.ReceiveBufferSize != 128 ||
		c.SendQueueSize != 3 || c.SendQueueBytes != 300 || c.SendTimeout != -1 || c.CloseLinger != -1 ||
		c.IdleTimeout != time.Minute || c.IdleCheckInterval != time.Second || c.KeepAlive != -1 || !c.Nagle {
		t.Errorf("explicit values not kept: %+v", c)
	}
	// The configured filter and socket options are in force.
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	cl := dial(t, srv)
	cl.send("12345678")
	got := make([]byte, 8)
	cl.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.ReadFull(cl.r, got); err != nil || string(got) != "12345678" {
		t.Errorf("echo through FixedSize(8): %q, %v", got, err)
	}
}

// TestConfig_EngineDefault: an empty Engine takes the environment's default
// (SUPERSOCKET_ENGINE, read once into defaultEngine), validated like the field itself.
func TestConfig_EngineDefault(t *testing.T) {
	saved := defaultEngine
	t.Cleanup(func() { defaultEngine = saved })
	for _, tc := range []struct{ env, want string }{{"", EngineGoroutine}, {"epoll", EngineEpoll}, {"goroutine", EngineGoroutine}} {
		defaultEngine = tc.env
		c, err := Config{Listeners: loopback()}.withDefaults()
		if err != nil || c.Engine != tc.want {
			t.Errorf("%s=%q: Engine %q, %v; want %q", engineEnv, tc.env, c.Engine, err, tc.want)
		}
		// An explicit Engine wins over the environment.
		if c, err := (Config{Listeners: loopback(), Engine: EngineGoroutine}).withDefaults(); err != nil || c.Engine != EngineGoroutine {
			t.Errorf("%s=%q, Engine goroutine: got %q, %v", engineEnv, tc.env, c.Engine, err)
		}
	}
	defaultEngine = "epol"
	_, err := Config{Listeners: loopback()}.withDefaults()
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Field, engineEnv) {
		t.Errorf("%s=epol: %v, want a ConfigError naming Engine and the variable", engineEnv, err)
	}
}
