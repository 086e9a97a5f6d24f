package main

// The configuration file of "supersocket serve -config FILE": SuperSocket's multi-server
// configuration in YAML, read with github.com/goccy/go-yaml (see the README's
// Dependencies). Every error names the file, the line and the field:
//
//	servers.yaml:14: servers[1].max_connections: must be positive, got -1

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/supersocket-go/supersocket"
	"github.com/supersocket-go/supersocket/internal/apps"
)

// fileConfig is the schema of a configuration file. Keys are Config's fields in
// snake_case; a key not listed here is an error.
type fileConfig struct {
	MetricsAddr string `yaml:"metrics_addr"` // host:port of /metrics, /status, /debug/pprof/
	LogLevel    string `yaml:"log_level"`    // debug, info, warn, error
	LogFormat   string `yaml:"log_format"`   // text, json
	// DrainTimeout is -drain-timeout: how long a stop or a hand-over drains sessions.
	DrainTimeout *durationValue `yaml:"drain_timeout"`
	Cluster      *clusterFlags  `yaml:"cluster"` // node_id, url or listen (and store), user_ttl, heartbeat_interval
	Servers      []fileServer   `yaml:"servers"`
}

// fileServer is one entry of servers: an app, its listeners, and Config's fields.
type fileServer struct {
	Name      string         `yaml:"name"` // default: the app's name; unique
	App       string         `yaml:"app"`
	Mode      string         `yaml:"mode"`
	Engine    string         `yaml:"engine"` // goroutine, epoll (default: goroutine, or $SUPERSOCKET_ENGINE)
	Listeners []fileListener `yaml:"listeners"`

	MaxConnections      intValue      `yaml:"max_connections"`
	MaxRequestLength    intValue      `yaml:"max_request_length"`
	ReceiveBufferSize   intValue      `yaml:"receive_buffer_size"`
	SendQueueSize       intValue      `yaml:"send_queue_size"`
	SendQueueBytes      intValue      `yaml:"send_queue_bytes"`
	SendTimeout         durationValue `yaml:"send_timeout"`
	CloseOnSendTimeout  bool          `yaml:"close_on_send_timeout"`
	CloseLinger         durationValue `yaml:"close_linger"`
	IdleTimeout         durationValue `yaml:"idle_timeout"`
	IdleCheckInterval   durationValue `yaml:"idle_check_interval"`
	HandshakeTimeout    durationValue `yaml:"handshake_timeout"`
	FirstRequestTimeout durationValue `yaml:"first_request_timeout"`
	MaxConnectionsPerIP intValue      `yaml:"max_connections_per_ip"`
	AcceptRate          float64       `yaml:"accept_rate"`
	AcceptBurst         intValue      `yaml:"accept_burst"`
	KeepAlive           durationValue `yaml:"keep_alive"`
	Nagle               bool          `yaml:"nagle"`
	SocketReadBuffer    intValue      `yaml:"socket_read_buffer"`
	SocketWriteBuffer   intValue      `yaml:"socket_write_buffer"`
	DatagramQueueSize   intValue      `yaml:"datagram_queue_size"`
}

// fileListener is one entry of a server's listeners.
type fileListener struct {
	Network string   `yaml:"network"` // default: the server's mode
	Addr    string   `yaml:"addr"`
	TLS     *fileTLS `yaml:"tls"`
	// The WebSocket listener's settings (network: ws).
	Path         string        `yaml:"path"`
	Origins      []string      `yaml:"origins"`
	Compression  bool          `yaml:"compression"`
	PingInterval durationValue `yaml:"ping_interval"`
	// Detect serves TLS (with tls), WebSocket and the raw protocol on this one TCP port,
	// told apart by each connection's first bytes; the WebSocket settings above apply.
	Detect        bool          `yaml:"detect"`
	DetectTimeout durationValue `yaml:"detect_timeout"`
	// Proxy reads the PROXY protocol header (v1 or v2) a load balancer sends.
	Proxy *fileProxy `yaml:"proxy"`
}

// fileProxy is a listener's PROXY protocol (supersocket.ProxyConfig).
type fileProxy struct {
	TrustedFrom    []string      `yaml:"trusted_from"` // CIDRs or IPs of the load balancers; required
	Untrusted      string        `yaml:"untrusted"`    // refuse (default) or serve: a peer outside trusted_from
	Optional       bool          `yaml:"optional"`     // a trusted peer may connect without a header
	HeaderTimeout  durationValue `yaml:"header_timeout"`
	MaxHeaderBytes intValue      `yaml:"max_header_bytes"`
}

// config makes the ProxyConfig; the library checks the rest.
func (p *fileProxy) config() (*supersocket.ProxyConfig, error) {
	pc := &supersocket.ProxyConfig{TrustedFrom: p.TrustedFrom, Optional: p.Optional,
		HeaderTimeout: time.Duration(p.HeaderTimeout), MaxHeaderBytes: int(p.MaxHeaderBytes)}
	switch p.Untrusted {
	case "", "refuse":
		pc.Untrusted = supersocket.ProxyRefuse
	case "serve":
		pc.Untrusted = supersocket.ProxyServeDirect
	default:
		return nil, fmt.Errorf("%q is not refuse or serve", p.Untrusted)
	}
	return pc, nil
}

// fileTLS is a listener's TLS. Relative paths are relative to the file's folder.
type fileTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	ClientAuth   string `yaml:"client_auth"` // none, optional, required
}

// intValue is a whole number; goccy/go-yaml would truncate 1.5 into an int without a word.
type intValue int

func (v *intValue) UnmarshalYAML(n ast.Node) error {
	switch n := n.(type) {
	case *ast.NullNode:
		*v = 0
		return nil
	case *ast.IntegerNode:
		switch i := n.Value.(type) {
		case int64:
			if i >= math.MinInt && i <= math.MaxInt {
				*v = intValue(i)
				return nil
			}
		case uint64:
			if i <= math.MaxInt {
				*v = intValue(i)
				return nil
			}
		}
		return &nodeError{node: n, problem: fmt.Sprintf("%s is out of range", n.GetToken().Value)}
	}
	if s, ok := n.(*ast.StringNode); ok {
		if _, err := strconv.ParseInt(s.Value, 10, 64); errors.Is(err, strconv.ErrRange) {
			return &nodeError{node: n, problem: fmt.Sprintf("%s is out of range", s.Value)}
		}
	}
	return &nodeError{node: n, problem: fmt.Sprintf("%s is not a whole number", nodeText(n))}
}

// durationValue is a Go duration such as "5s", "1m30s" or "250ms"; a bare 0 is allowed.
type durationValue time.Duration

func (v *durationValue) UnmarshalYAML(n ast.Node) error {
	switch n := n.(type) {
	case *ast.NullNode:
		*v = 0
		return nil
	case *ast.IntegerNode:
		if n.GetToken().Value == "0" {
			*v = 0
			return nil
		}
		return &nodeError{node: n, problem: fmt.Sprintf("%s needs a unit, like %ss", n.GetToken().Value, n.GetToken().Value)}
	case *ast.StringNode:
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return &nodeError{node: n, problem: fmt.Sprintf("%q is not a duration (like 5s, 1m30s or 250ms)", n.Value)}
		}
		*v = durationValue(d)
		return nil
	}
	return &nodeError{node: n, problem: fmt.Sprintf("%s is not a duration (like 5s, 1m30s or 250ms)", nodeText(n))}
}

// nodeText quotes a scalar, or names the kind of a collection.
func nodeText(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType, ast.SequenceType:
		return yamlKind(n.Type())
	}
	if tk := n.GetToken(); tk != nil {
		return strconv.Quote(tk.Value)
	}
	return yamlKind(n.Type())
}

// nodeError is a bad value, at its node.
type nodeError struct {
	node    ast.Node
	problem string
}

func (e *nodeError) Error() string { return e.problem }

// FileError is an error in a configuration file, at a line, in a field.
type FileError struct {
	File    string
	Line    int    // 0 when unknown
	Field   string // the key's path, such as "servers[1].max_connections"; "" for the file as a whole
	Problem string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// configFile is a loaded, checked configuration file.
type configFile struct {
	path    string
	doc     *ast.File
	cfg     fileConfig
	servers []serverSpec
}

// loadConfigFile reads, expands, parses and checks a configuration file. The servers it
// returns are not built yet; build them with serverSpec.build.
func loadConfigFile(path string) (*configFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{File: path, Problem: err.Error()}
	}
	data, err := expandEnv(raw, os.LookupEnv)
	if err != nil {
		var le *lineError
		if errors.As(err, &le) {
			return nil, &FileError{File: path, Line: le.line, Problem: le.problem}
		}
		return nil, &FileError{File: path, Problem: err.Error()}
	}
	cf := &configFile{path: path}
	if cf.doc, err = parser.ParseBytes(data, 0); err != nil {
		return nil, cf.yamlError(err)
	}
	if len(cf.doc.Docs) != 1 || cf.doc.Docs[0].Body == nil {
		if len(cf.doc.Docs) > 1 {
			second := cf.doc.Docs[1]
			at := line(second)
			if second.Start != nil && second.Start.Position != nil {
				at = second.Start.Position.Line // the "---"
			}
			return nil, &FileError{File: path, Line: at, Problem: "more than one YAML document"}
		}
		return nil, &FileError{File: path, Field: "servers", Problem: "the file declares no servers"}
	}
	dec := yaml.NewDecoder(strings.NewReader(""), yaml.DisallowUnknownField())
	if err := dec.DecodeFromNode(cf.doc.Docs[0].Body, &cf.cfg); err != nil {
		return nil, cf.yamlError(err)
	}
	if err := cf.check(); err != nil {
		return nil, err
	}
	return cf, nil
}

// check validates what New does not, and turns each servers entry into a serverSpec.
func (cf *configFile) check() error {
	c := &cf.cfg
	if c.LogLevel != "" {
		if _, err := parseLogLevel(c.LogLevel); err != nil {
			return cf.errorAt("log_level", "%v", err)
		}
	}
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		return cf.errorAt("log_format", "%q is not text or json", c.LogFormat)
	}
	if c.MetricsAddr != "" {
		if err := checkHostPort(c.MetricsAddr); err != nil {
			return cf.errorAt("metrics_addr", "%v", err)
		}
	}
	if c.DrainTimeout != nil && *c.DrainTimeout < 0 {
		return cf.errorAt("drain_timeout", "%v is negative", time.Duration(*c.DrainTimeout))
	}
	if len(c.Servers) == 0 {
		return cf.errorAt("servers", "the file declares no servers")
	}
	names := map[string]int{}
	for i, s := range c.Servers {
		at := fmt.Sprintf("servers[%d]", i)
		if s.App == "" {
			return cf.errorAt(at+".app", "an app is required (one of %s)", strings.Join(apps.Names(), ", "))
		}
		if _, err := apps.Lookup(s.App); err != nil {
			return cf.errorAt(at+".app", "%v", err)
		}
		name := s.Name
		if name == "" {
			name = s.App
		}
		if j, dup := names[name]; dup {
			field := at + ".name"
			if s.Name == "" {
				field = at // the name came from the app
			}
			return cf.errorAt(field, "the name %q is taken by servers[%d]; names label metrics and logs, so each server needs its own", name, j)
		}
		names[name] = i
		if len(s.Listeners) == 0 {
			return cf.errorAt(at+".listeners", "at least one listener is required")
		}
		spec := serverSpec{app: s.App, cfg: s.config(name)}
		for j, l := range s.Listeners {
			lc := supersocket.ListenerConfig{Network: l.Network, Addr: l.Addr}
			switch ws := l.Path != "" || len(l.Origins) > 0 || l.Compression || l.PingInterval != 0; {
			case cmp.Or(l.Network, s.Mode) == "ws" || l.Detect:
				// With detect, the WebSocket settings turn on the upgrade's detection.
				lc.WebSocket = &supersocket.WebSocketConfig{Path: l.Path, Origins: l.Origins, Compression: l.Compression,
					PingInterval: time.Duration(l.PingInterval)}
			case ws:
				return cf.errorAt(fmt.Sprintf("%s.listeners[%d]", at, j), "path, origins, compression and ping_interval are for network: ws (or detect: true)")
			}
			switch {
			case l.Detect:
				lc.Detect = &supersocket.DetectConfig{Timeout: time.Duration(l.DetectTimeout)}
			case l.DetectTimeout != 0:
				return cf.errorAt(fmt.Sprintf("%s.listeners[%d].detect_timeout", at, j), "detect_timeout is for detect: true")
			}
			if l.Proxy != nil {
				p, err := l.Proxy.config()
				if err != nil {
					return cf.errorAt(fmt.Sprintf("%s.listeners[%d].proxy.untrusted", at, j), "%v", err)
				}
				lc.Proxy = p
			}
			if l.TLS != nil {
				t, err := l.TLS.config(filepath.Dir(cf.path))
				if err != nil {
					return cf.errorAt(fmt.Sprintf("%s.listeners[%d].tls.client_auth", at, j), "%v", err)
				}
				lc.TLS = t
			}
			spec.cfg.Listeners = append(spec.cfg.Listeners, lc)
		}
		spec.named = s.Name != ""
		spec.place = func(ce *supersocket.ConfigError) error { return cf.configError(i, ce) }
		cf.servers = append(cf.servers, spec)
	}
	return nil
}

// config maps the entry's fields onto a Config: the same names, snake_case in the file.
func (s *fileServer) config(name string) supersocket.Config {
	return supersocket.Config{
		Name:                name,
		Mode:                s.Mode,
		Engine:              s.Engine,
		MaxConnections:      int(s.MaxConnections),
		MaxRequestLength:    int(s.MaxRequestLength),
		ReceiveBufferSize:   int(s.ReceiveBufferSize),
		SendQueueSize:       int(s.SendQueueSize),
		SendQueueBytes:      int(s.SendQueueBytes),
		SendTimeout:         time.Duration(s.SendTimeout),
		CloseOnSendTimeout:  s.CloseOnSendTimeout,
		CloseLinger:         time.Duration(s.CloseLinger),
		IdleTimeout:         time.Duration(s.IdleTimeout),
		IdleCheckInterval:   time.Duration(s.IdleCheckInterval),
		HandshakeTimeout:    time.Duration(s.HandshakeTimeout),
		FirstRequestTimeout: time.Duration(s.FirstRequestTimeout),
		MaxConnectionsPerIP: int(s.MaxConnectionsPerIP),
		AcceptRate:          s.AcceptRate,
		AcceptBurst:         int(s.AcceptBurst),
		KeepAlive:           time.Duration(s.KeepAlive),
		Nagle:               s.Nagle,
		SocketReadBuffer:    int(s.SocketReadBuffer),
		SocketWriteBuffer:   int(s.SocketWriteBuffer),
		DatagramQueueSize:   int(s.DatagramQueueSize),
	}
}

// config makes the listener's TLSConfig; relative paths are taken from dir.
func (t *fileTLS) config(dir string) (*supersocket.TLSConfig, error) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	policy, err := parseClientAuth(t.ClientAuth)
	if err != nil {
		return nil, err
	}
	return &supersocket.TLSConfig{
		CertFile:     abs(t.CertFile),
		KeyFile:      abs(t.KeyFile),
		ClientCAFile: abs(t.ClientCAFile),
		ClientAuth:   policy,
	}, nil
}

// configError places a *supersocket.ConfigError of the i-th server at its key in the file.
func (cf *configFile) configError(i int, ce *supersocket.ConfigError) error {
	return cf.errorAt(fmt.Sprintf("servers[%d].%s", i, snakePath(ce.Field)), "%s", ce.Problem)
}

// errorAt makes a FileError for the key at path ("servers[0].listeners[1].addr"). When
// the key is not in the file (a default was wrong), the error is placed at the nearest
// enclosing key that is.
func (cf *configFile) errorAt(path, format string, args ...any) *FileError {
	e := &FileError{File: cf.path, Field: path, Problem: fmt.Sprintf(format, args...)}
	for p := path; p != ""; p = parentPath(p) {
		if n := cf.node(p); n != nil {
			e.Line = line(n)
			break
		}
	}
	return e
}

// node returns the node of the key at path, or nil.
func (cf *configFile) node(path string) ast.Node {
	if cf.doc == nil {
		return nil
	}
	p, err := yaml.PathString("$." + path)
	if err != nil {
		return nil
	}
	n, err := p.FilterFile(cf.doc)
	if err != nil {
		return nil
	}
	return n
}

// parentPath drops the last key or index of a path: "a[0].b" → "a[0]" → "a" → "".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

func line(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// yamlError turns an error of the YAML library, or of a value's UnmarshalYAML, into a
// FileError with the line and the path of the key.
func (cf *configFile) yamlError(err error) error {
	var ne *nodeError
	if errors.As(err, &ne) {
		return &FileError{File: cf.path, Line: line(ne.node), Field: cleanPath(ne.node.GetPath()), Problem: ne.problem}
	}
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &FileError{File: cf.path, Problem: err.Error()}
	}
	e := &FileError{File: cf.path, Problem: ye.GetMessage()}
	tk := ye.GetToken()
	if tk != nil && tk.Position != nil {
		e.Line = tk.Position.Line
	}
	if n := cf.nodeOf(tk); n != nil {
		e.Field = cleanPath(n.GetPath())
	}
	var (
		te *yaml.TypeError
		oe *yaml.OverflowError
		ue *yaml.UnknownFieldError
		un *yaml.UnexpectedNodeTypeError
	)
	switch {
	case errors.As(err, &te) && tk != nil:
		e.Problem = fmt.Sprintf("%s is not %s", strconv.Quote(tk.Value), kindName(te.DstType.Kind().String()))
	case errors.As(err, &oe) && tk != nil:
		e.Problem = fmt.Sprintf("%s is out of range", tk.Value)
	case errors.As(err, &ue):
		e.Problem = strings.Replace(ue.Message, "unknown field", "unknown key", 1)
		e.Field = parentPath(e.Field)
	case errors.As(err, &un):
		e.Problem = fmt.Sprintf("%s is not allowed here; want %s", yamlKind(un.Actual), yamlKind(un.Expected))
	}
	return e
}

// kindName names a Go kind the way the file's reader thinks of it.
func kindName(kind string) string {
	switch {
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "a whole number"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "string":
		return "a string"
	case kind == "slice":
		return "a list"
	case kind == "struct", kind == "ptr", kind == "map":
		return "a mapping"
	}
	return "a " + kind
}

// yamlKind names a kind of YAML node with its article.
func yamlKind(t ast.NodeType) string {
	switch t {
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	case ast.StringType:
		return "a string"
	case ast.SequenceType:
		return "a list"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.NullType:
		return "null"
	}
	return "a " + t.YAMLName()
}

// nodeOf finds the node a token belongs to.
func (cf *configFile) nodeOf(tk *token.Token) ast.Node {
	if tk == nil || cf.doc == nil {
		return nil
	}
	var found ast.Node
	for _, d := range cf.doc.Docs {
		ast.Walk(visitFunc(func(n ast.Node) bool {
			if found == nil && n.GetToken() == tk {
				found = n
			}
			return found == nil
		}), d)
	}
	return found
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if n == nil || !f(n) {
		return nil
	}
	return f
}

// cleanPath turns the library's "$.servers[0].name" into "servers[0].name".
func cleanPath(p string) string {
	return strings.TrimPrefix(strings.TrimPrefix(p, "$"), ".")
}

// snakePath turns a ConfigError field such as "Listeners[1].TLS.ClientCAFile" into the
// file's "listeners[1].tls.client_ca_file".
func snakePath(field string) string {
	// A listener's WebSocket settings sit on the listener itself in the file.
	field = strings.Replace(field, ".WebSocket.", ".", 1)
	var b strings.Builder
	r := []rune(field)
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prev := r[i-1]
			prevLower := prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9'
			prevUpper := prev >= 'A' && prev <= 'Z'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			if prevLower || prevUpper && nextLower {
				b.WriteByte('_')
			}
		}
		if upper {
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// checkHostPort checks an address is host:port with a numeric port.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// lineError is an error at a line of the file's text.
type lineError struct {
	line    int
	problem string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.problem) }

// expandEnv expands environment variables in the file's text, before it is parsed:
// ${VAR} is VAR's value, and an error if VAR is not set; ${VAR:-default} is the default
// when VAR is unset or empty; $$ is a literal $. Any other $ stays as it is. Comments are
// left alone. A value must not hold a line break (lines would shift), and it is pasted
// as text: quote the scalar ("${ADDR}") when the value may hold YAML's special characters.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	var out strings.Builder
	out.Grow(len(data))
	for i, ln := range lines {
		code, comment := splitComment(ln)
		expanded, err := expandLine(code, lookup)
		if err != nil {
			return nil, &lineError{line: i + 1, problem: err.Error()}
		}
		out.WriteString(expanded)
		out.WriteString(comment)
	}
	return []byte(out.String()), nil
}

func expandLine(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i+1 == len(s) {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated %q (write $$ for a literal $)", strings.TrimRight(s[i:], "\r\n"))
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not a variable name (letters, digits and _)", expr, name)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} for a default)", name, name)
		}
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("environment variable %s holds a line break", name)
		}
		b.WriteString(v)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// splitComment splits a YAML line before its comment: a # at the start or after a blank,
// outside a quoted scalar. A quote opens a scalar only where a value can begin (after
// ": ", "- ", "[", "{", "," or at the start), so an apostrophe inside a plain word
// (don't) is just a character.
func splitComment(ln string) (code, comment string) {
	var quote byte
	canOpen := true
	for i := 0; i < len(ln); i++ {
		c := ln[i]
		if quote != 0 {
			switch {
			case quote == '"' && c == '\\':
				i++
			case c == quote:
				if quote == '\'' && i+1 < len(ln) && ln[i+1] == '\'' {
					i++ // '' is an escaped quote
				} else {
					quote = 0
				}
			}
			continue
		}
		switch c {
		case '#':
			if i == 0 || ln[i-1] == ' ' || ln[i-1] == '\t' {
				return ln[:i], ln[i:]
			}
		case '"', '\'':
			if canOpen {
				quote = c
				continue
			}
		}
		switch c {
		case ' ', '\t':
			// blanks keep canOpen as it was
		case ':', '-', '[', '{', ',', '?':
			canOpen = true
		default:
			canOpen = false
		}
	}
	return ln, ""
}
