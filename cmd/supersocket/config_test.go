package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/cli"
)

// writeFile writes a config file into a fresh folder and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "servers.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileFields are the Config fields a config file sets: every field but the hooks and the
// ones the CLI fills itself.
func fileFields(t *testing.T) []reflect.StructField {
	t.Helper()
	// SessionIDPrefix is the cluster's: -node-id sets it.
	skip := map[string]bool{"Listeners": true, "Filter": true, "Logger": true, "SessionIDPrefix": true}
	var out []reflect.StructField
	for f := range reflect.TypeFor[supersocket.Config]().Fields() {
		if skip[f.Name] || f.Type.Kind() == reflect.Func {
			continue
		}
		out = append(out, f)
	}
	if len(out) < 20 {
		t.Fatalf("only %d settable Config fields found", len(out))
	}
	return out
}

// sample is a distinct, valid, non-default value for a Config field: as YAML text, as a
// flag value, and as the Go value it must become.
func sample(t *testing.T, i int, f reflect.StructField) (text string, want any) {
	t.Helper()
	switch {
	case f.Name == "Name":
		return "custom-name", "custom-name"
	case f.Name == "Mode":
		return "udp", "udp"
	case f.Name == "Engine":
		return "epoll", "epoll"
	case f.Type == reflect.TypeFor[time.Duration]():
		d := time.Duration(i+1) * 100 * time.Millisecond
		return d.String(), d
	case f.Type.Kind() == reflect.Int:
		return fmt.Sprint(1000 + i), 1000 + i
	case f.Type.Kind() == reflect.Bool:
		return "true", true
	case f.Type.Kind() == reflect.Float64:
		return "12.5", 12.5
	}
	t.Fatalf("Config.%s: no sample for %v; teach the config file and this test about it", f.Name, f.Type)
	return "", nil
}

// TestConfigFileEveryField sets every Config field in a file, under its snake_case key,
// and checks it arrives in the server's Config. A Config field added later without a
// key fails here.
func TestConfigFileEveryField(t *testing.T) {
	var yaml strings.Builder
	yaml.WriteString("servers:\n  - app: echo\n    listeners:\n      - addr: 127.0.0.1:0\n")
	fields := fileFields(t)
	want := map[string]any{}
	for i, f := range fields {
		text, v := sample(t, i, f)
		fmt.Fprintf(&yaml, "    %s: %s\n", snakePath(f.Name), text)
		want[f.Name] = v
	}
	cf, err := loadConfigFile(writeFile(t, yaml.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml.String())
	}
	got := reflect.ValueOf(cf.servers[0].cfg)
	for _, f := range fields {
		t.Run(f.Name, func(t *testing.T) {
			if g := got.FieldByName(f.Name).Interface(); g != want[f.Name] {
				t.Errorf("%s: got %v, want %v", snakePath(f.Name), g, want[f.Name])
			}
		})
	}
}

// TestFlagsEveryField: every Config field a file can set has a kebab-case flag too.
func TestFlagsEveryField(t *testing.T) {
	fields := fileFields(t)
	var args []string
	want := map[string]any{}
	for i, f := range fields {
		text, v := sample(t, i, f)
		args = append(args, "-"+strings.ReplaceAll(snakePath(f.Name), "_", "-")+"="+text)
		want[f.Name] = v
	}
	fl := defaultServeFlags()
	fs := newServeFlagSet(&fl, &bytes.Buffer{})
	if err := fs.Parse(args); err != nil {
		t.Fatalf("%v (args %v)", err, args)
	}
	got := reflect.ValueOf(fl.cfg)
	for _, f := range fields {
		if g := got.FieldByName(f.Name).Interface(); g != want[f.Name] {
			t.Errorf("%s: got %v, want %v", f.Name, g, want[f.Name])
		}
		if f.Name != "Name" && f.Name != "Mode" && flagOf[f.Name] == "" {
			t.Errorf("flagOf has no entry for %s", f.Name)
		}
	}
}

func TestConfigFileSchema(t *testing.T) {
	path := writeFile(t, `
metrics_addr: 127.0.0.1:9100
log_level: debug
log_format: json
servers:
  - app: commandline
    listeners:
      - addr: 127.0.0.1:2012
  - name: secure
    app: echo
    mode: tcp
    listeners:
      - addr: 127.0.0.1:2020
        network: tcp4
        tls:
          cert_file: certs/server.crt
          key_file: /abs/server.key
          client_ca_file: certs/ca.crt
          client_auth: optional
      - {addr: "127.0.0.1:2021", network: udp}
    idle_timeout: 0
    send_timeout: -1s
    close_linger: 1m30s
`)
	cf, err := loadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if cf.cfg.MetricsAddr != "127.0.0.1:9100" || cf.cfg.LogLevel != "debug" || cf.cfg.LogFormat != "json" {
		t.Errorf("top level: %+v", cf.cfg)
	}
	if len(cf.servers) != 2 {
		t.Fatalf("%d servers", len(cf.servers))
	}
	if s := cf.servers[0]; s.app != "commandline" || s.cfg.Name != "commandline" || s.named {
		t.Errorf("a server without a name takes its app's: %+v", s)
	}
	s := cf.servers[1]
	if s.app != "echo" || s.cfg.Name != "secure" || !s.named || s.cfg.Mode != "tcp" {
		t.Errorf("second server: %+v", s)
	}
	dir := filepath.Dir(path)
	wantListeners := []supersocket.ListenerConfig{
		{Network: "tcp4", Addr: "127.0.0.1:2020", TLS: &supersocket.TLSConfig{
			CertFile:     filepath.Join(dir, "certs/server.crt"),
			KeyFile:      "/abs/server.key",
			ClientCAFile: filepath.Join(dir, "certs/ca.crt"),
			ClientAuth:   supersocket.ClientCertOptional,
		}},
		{Network: "udp", Addr: "127.0.0.1:2021"},
	}
	if !reflect.DeepEqual(s.cfg.Listeners, wantListeners) {
		t.Errorf("listeners:\n got %+v\nwant %+v", s.cfg.Listeners, wantListeners)
	}
	if s.cfg.IdleTimeout != 0 || s.cfg.SendTimeout != -time.Second || s.cfg.CloseLinger != 90*time.Second {
		t.Errorf("durations: idle %v send %v linger %v", s.cfg.IdleTimeout, s.cfg.SendTimeout, s.cfg.CloseLinger)
	}
}

func TestConfigFileEnv(t *testing.T) {
	t.Setenv("SS_TEST_PORT", "4242")
	t.Setenv("SS_TEST_EMPTY", "")
	t.Setenv("SS_TEST_IDLE", "45s")
	os.Unsetenv("SS_TEST_UNSET")
	path := writeFile(t, `# ${SS_TEST_UNSET} in a comment is left alone
metrics_addr: "${SS_TEST_UNSET:-127.0.0.1:9999}"
servers:
  - app: echo
    name: price-$$5 # a literal $, and ${SS_TEST_UNSET} in a trailing comment
    listeners:
      - addr: 127.0.0.1:${SS_TEST_PORT}
      - addr: "${SS_TEST_EMPTY:-127.0.0.1}:${SS_TEST_PORT:-1}"
    max_connections: ${SS_TEST_UNSET:-77}
    idle_timeout: ${SS_TEST_IDLE}
    send_timeout: $5s-not-a-var
`)
	_, err := loadConfigFile(path)
	// send_timeout is there to prove a lone $ stays: "$5s-not-a-var" is no duration.
	if err == nil || !strings.Contains(err.Error(), `servers[0].send_timeout: "$5s-not-a-var"`) ||
		!strings.Contains(err.Error(), ":11:") {
		t.Fatalf("got %v", err)
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte("    send_timeout: $5s-not-a-var\n"), nil, 1), 0o600)
	cf, err := loadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := cf.servers[0]
	if cf.cfg.MetricsAddr != "127.0.0.1:9999" {
		t.Errorf("metrics_addr %q", cf.cfg.MetricsAddr)
	}
	if s.cfg.Name != "price-$5" {
		t.Errorf("name %q", s.cfg.Name)
	}
	if a, b := s.cfg.Listeners[0].Addr, s.cfg.Listeners[1].Addr; a != "127.0.0.1:4242" || b != "127.0.0.1:4242" {
		t.Errorf("addrs %q %q", a, b)
	}
	if s.cfg.MaxConnections != 77 || s.cfg.IdleTimeout != 45*time.Second {
		t.Errorf("max_connections %d idle_timeout %v", s.cfg.MaxConnections, s.cfg.IdleTimeout)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "a", "EMPTY": "", "NL": "x\ny"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct{ in, want, err string }{
		{in: "k: ${A}\n", want: "k: a\n"},
		{in: "k: ${A:-d}${B:-d}${EMPTY:-e}${B:-}\n", want: "k: ade\n"},
		{in: "k: $$A $A $ ${A}$$\n", want: "k: $A $A $ a$\n"},
		{in: "k: 'x' # ${B} not expanded\n", want: "k: 'x' # ${B} not expanded\n"},
		{in: "k: \"# ${A}\" # ${B}\n", want: "k: \"# a\" # ${B}\n"},
		{in: "k: don't ${A} # ${B}\n", want: "k: don't a # ${B}\n"},
		{in: "k: x#${A}\n", want: "k: x#a\n"},
		{in: "ok: 1\nk: ${B}\n", err: "line 2: environment variable B is not set"},
		{in: "k: ${A\n", err: "line 1: unterminated"},
		{in: "k: ${1A}\n", err: "not a variable name"},
		{in: "k: ${NL}\n", err: "line break"},
	}
	for _, c := range cases {
		got, err := expandEnv([]byte(c.in), lookup)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.in, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.err == "" && string(got) != c.want:
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestConfigFileErrors: every error names the file, the line and the key.
func TestConfigFileErrors(t *testing.T) {
	const head = "servers:\n  - app: echo\n    listeners:\n      - addr: 127.0.0.1:0\n" // lines 1-4
	cases := []struct {
		name, body string
		line       int
		want       string // after "file:line: "
	}{
		{"unknown top key", "colour: blue\n" + head, 1, `unknown key "colour"`},
		{"unknown server key", head + "    max_conections: 5\n", 5, `servers[0]: unknown key "max_conections"`},
		{"unknown listener key", head + "        port: 5\n", 5, `servers[0].listeners[0]: unknown key "port"`},
		{"unknown tls key", head + "        tls:\n          cert: x\n", 6, `servers[0].listeners[0].tls: unknown key "cert"`},
		{"negative", head + "    max_connections: -1\n", 5, "servers[0].max_connections: must be positive, got -1"},
		{"negative duration", head + "    idle_timeout: -5s\n", 5, "servers[0].idle_timeout: must not be negative"},
		{"bad duration", head + "    send_timeout: 5 seconds\n", 5, `servers[0].send_timeout: "5 seconds" is not a duration`},
		{"duration without unit", head + "    close_linger: 5\n", 5, "servers[0].close_linger: 5 needs a unit, like 5s"},
		{"not a number", head + "    max_request_length: lots\n", 5, `servers[0].max_request_length: "lots" is not a whole number`},
		{"fraction", head + "    send_queue_size: 1.5\n", 5, `servers[0].send_queue_size: "1.5" is not a whole number`},
		{"overflow", head + "    send_queue_bytes: 99999999999999999999999\n", 5, "servers[0].send_queue_bytes: 99999999999999999999999 is out of range"},
		{"bad bool", head + "    nagle: yes\n", 5, `servers[0].nagle: "yes" is not true or false`},
		{"bad float", head + "    accept_rate: fast\n", 5, `servers[0].accept_rate: "fast" is not a number`},
		{"bad mode", head + "    mode: sctp\n", 5, `servers[0].mode: "sctp" is not tcp, udp or ws`},
		{"bad app", "servers:\n  - app: nope\n", 2, `servers[0].app: unknown app "nope"`},
		{"no app", "servers:\n  - name: x\n    listeners:\n      - addr: 127.0.0.1:0\n", 2, "servers[0].app: an app is required"},
		{"bad address", "servers:\n  - app: echo\n    listeners:\n      - addr: nowhere\n", 4, `servers[0].listeners[0].addr: "nowhere" is not host:port`},
		{"bad port", "servers:\n  - app: echo\n    listeners:\n      - addr: 127.0.0.1:99999\n", 4, `servers[0].listeners[0].addr: "127.0.0.1:99999": port`},
		{"bad network", head + "        network: sctp\n", 5, `servers[0].listeners[0].network: "sctp" is not tcp`},
		{"tls over udp", head + "        network: udp\n        tls: {cert_file: a.pem, key_file: b.pem}\n", 6, "servers[0].listeners[0].tls: TLS needs a TCP listener"},
		{"ws path on tcp", head + "        path: /ws\n", 4, "servers[0].listeners[0]: path, origins, compression and ping_interval are for network: ws"},
		{"bad ws path", head + "        network: ws\n        path: ws\n", 6, `servers[0].listeners[0].path: "ws" does not start with /`},
		{"missing cert", head + "        tls: {cert_file: a.pem, key_file: b.pem}\n", 5, "servers[0].listeners[0].tls.cert_file: open "},
		{"bad client auth", head + "        tls: {cert_file: a.pem, key_file: b.pem, client_auth: maybe}\n", 5, `servers[0].listeners[0].tls.client_auth: "maybe" is not none, optional or required`},
		{"no listeners", "servers:\n  - app: echo\n", 2, "servers[0].listeners: at least one listener is required"},
		{"listeners not a list", "servers:\n  - app: echo\n    listeners: 5\n", 3, "servers[0].listeners: an integer is not allowed here; want a list"},
		{"duplicate name", head + "  - app: echo\n    listeners:\n      - addr: 127.0.0.1:0\n", 5, `servers[1]: the name "echo" is taken by servers[0]`},
		{"duplicate key", head + "    app: commandline\n", 5, `mapping key "app" already defined`},
		{"syntax", "servers:\n  - app: echo\n   listeners: [\n", 3, ""},
		{"no servers", "metrics_addr: 127.0.0.1:0\n", 0, "servers: the file declares no servers"},
		{"empty servers", "servers: []\n", 1, "servers: the file declares no servers"},
		{"bad log level", "log_level: loud\n" + head, 1, `log_level: "loud" is not debug, info, warn or error`},
		{"bad log format", "log_format: xml\n" + head, 1, `log_format: "xml" is not text or json`},
		{"bad metrics addr", "metrics_addr: 9100\n" + head, 1, `metrics_addr: "9100" is not host:port`},
		{"unset env", head + "    name: ${SS_TEST_SURELY_UNSET}\n", 5, "environment variable SS_TEST_SURELY_UNSET is not set"},
		{"two documents", head + "---\n" + head, 5, "more than one YAML document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.body)
			err := loadAndBuild(path)
			if err == nil {
				t.Fatalf("no error for:\n%s", c.body)
			}
			prefix := path + ": "
			if c.line > 0 {
				prefix = fmt.Sprintf("%s:%d: ", path, c.line)
			}
			if !strings.HasPrefix(err.Error(), prefix+c.want) {
				t.Errorf("got  %q\nwant %q…", err, prefix+c.want)
			}
		})
	}
}

// loadAndBuild loads a file and builds its servers, as serve does before starting any.
func loadAndBuild(path string) error {
	cf, err := loadConfigFile(path)
	if err != nil {
		return err
	}
	for _, s := range cf.servers {
		if _, err := s.build(discardLogger(), newHist()); err != nil {
			return err
		}
	}
	return nil
}

func TestSnakePath(t *testing.T) {
	for in, want := range map[string]string{
		"MaxConnections":                "max_connections",
		"MaxConnectionsPerIP":           "max_connections_per_ip",
		"Listeners[1].TLS.ClientCAFile": "listeners[1].tls.client_ca_file",
		"Listeners[0].Addr":             "listeners[0].addr",
		"Nagle":                         "nagle",
	} {
		if got := snakePath(in); got != want {
			t.Errorf("snakePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFileErrorWithoutLine(t *testing.T) {
	e := &FileError{File: "f.yaml", Problem: "gone"}
	if e.Error() != "f.yaml: gone" {
		t.Fatal(e.Error())
	}
	var fe *FileError
	if !errors.As(error(e), &fe) {
		t.Fatal("not a FileError")
	}
}

// TestFlagsOverrideSingleServerFile: flags win over a file of one server; what they do
// not set keeps the file's value; errors name the flag or the file as the value came.
func TestFlagsOverrideSingleServerFile(t *testing.T) {
	path := writeFile(t, `servers:
  - app: commandline
    listeners:
      - addr: 127.0.0.1:0
    max_connections: 5
    idle_timeout: 1s
    max_request_length: 100
`)
	overlay := func(args ...string) (serverSpec, error) {
		t.Helper()
		cf, err := loadConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f := defaultServeFlags()
		fs := newServeFlagSet(&f, &bytes.Buffer{})
		all := append([]string{"-config", path}, args...)
		if err := fs.Parse(all); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		return overlayFlags(cf.servers[0], all, set)
	}
	s, err := overlay("-max-connections", "9", "-addr", "127.0.0.1:0,127.0.0.1:0", "-app", "echo")
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxConnections != 9 || s.cfg.IdleTimeout != time.Second || s.cfg.MaxRequestLength != 100 {
		t.Errorf("max_connections %d idle %v max_request_length %d", s.cfg.MaxConnections, s.cfg.IdleTimeout, s.cfg.MaxRequestLength)
	}
	if len(s.cfg.Listeners) != 2 || s.app != "echo" || s.cfg.Name != "echo" {
		t.Errorf("listeners %v app %q name %q", s.cfg.Listeners, s.app, s.cfg.Name)
	}
	// A bad value from a flag names the flag…
	s, err = overlay("-max-connections", "-3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.build(discardLogger(), newHist()); err == nil || !strings.HasPrefix(err.Error(), "-max-connections: must be positive") {
		t.Errorf("got %v", err)
	}
	// … and one from the file still names the file's line, with flags given.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte("idle_timeout: 1s"), []byte("idle_timeout: -1s"), 1), 0o600)
	s, err = overlay("-max-connections", "7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.build(discardLogger(), newHist()); err == nil || !strings.HasPrefix(err.Error(), path+":6: servers[0].idle_timeout: must not be negative") {
		t.Errorf("got %v", err)
	}
	if _, err := overlay("-app", "nope"); err == nil || !strings.Contains(err.Error(), "-app: unknown app") {
		t.Errorf("-app nope: %v", err)
	}
	if _, err := overlay("-tls-cert", "a.pem"); err == nil || !strings.Contains(err.Error(), "-tls-key") {
		t.Errorf("-tls-cert alone: %v", err)
	}
}

// TestServeConfigFlags runs the command: a multi-server file refuses server flags (exit
// 2, naming them), a single-server file takes them.
func TestServeConfigFlags(t *testing.T) {
	multi := writeFile(t, `servers:
  - app: commandline
    listeners: [{addr: "127.0.0.1:0"}]
  - app: echo
    listeners: [{addr: "127.0.0.1:0"}]
`)
	var out bytes.Buffer
	code := run(context.Background(), []string{"serve", "-config", multi, "-max-connections", "5", "-idle-timeout", "1s"}, &out)
	if code != cli.ExitUsage {
		t.Fatalf("exit %d, want %d:\n%s", code, cli.ExitUsage, &out)
	}
	for _, want := range []string{"-idle-timeout, -max-connections", multi, "declares 2 servers"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("message does not say %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), "listening") {
		t.Errorf("something started:\n%s", &out)
	}

	single := writeFile(t, "servers:\n  - app: echo\n    listeners: [{addr: \"127.0.0.1:1\"}]\n")
	addr, logs := start(t, "serve", "-config", single, "-addr", "127.0.0.1:0", "-app", "commandline", "-log-level", "debug")
	c := dial(t, addr)
	fmt.Fprint(c, "ADD 2 3\r\n")
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "5\r\n" {
		t.Fatalf("got %q, %v\n%s", buf[:n], err, logs)
	}
}

func TestServeConfigBadFlagsExit2(t *testing.T) {
	path := writeFile(t, "servers:\n  - app: echo\n    listeners: [{addr: \"127.0.0.1:0\"}]\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-log-format", "xml"}, "-log-format"},
		{[]string{"-metrics-addr", "nowhere"}, "-metrics-addr"},
		{[]string{"-mode", "sctp"}, "-mode"},
		{[]string{"-addr", "no-port"}, "-addr"},
	} {
		var out bytes.Buffer
		args := append([]string{"serve", "-config", path}, tc.args...)
		if code := run(context.Background(), args, &out); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d:\n%s", tc.args, code, cli.ExitUsage, &out)
		}
		if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "listening") {
			t.Errorf("%v: output:\n%s", tc.args, &out)
		}
	}
}
