package supersocket

import (
	"errors"
	"github.com/supersocket-go/supersocket/internal/websocket"
	"net/textproto"
	"strings"
	"time"
)

// WebSocketConfig configures a WebSocket listener (ListenerConfig.Network "ws"; with TLS,
// wss). Its zero value serves every origin at path "/ws", binary messages, no
// compression, no pings.
//
// A WebSocket session is a session like any other: the same handlers, filter, commands,
// limits, idle clearing, back-pressure and counters. The opening handshake is read on the
// connection's own goroutine, bounded by Config.HandshakeTimeout, before the session
// exists: a request that is not a valid upgrade gets an HTTP error and never becomes a
// session. Then each complete message (fragments reassembled, inflated if compressed) is
// handed to the session's filter as one unit that holds whole requests, like a UDP
// datagram: a filter with filter.Finisher (the line filters) takes a last request without
// its terminator, so a browser's "ECHO hello" is a command line. An empty message holds no
// request: no handler runs for it. Send and TrySend send one message each.
type WebSocketConfig struct {
	// Path is the request path served; another path gets 404. Default "/ws".
	Path string
	// Origins, when set, lists the Origin values allowed to connect, compared without
	// case; an entry "*" allows any, and "https://*.example.com" any subdomain. A browser
	// always sends Origin: a request with another gets 403. A request without Origin
	// (not from a browser) is allowed. Empty: any origin.
	Origins []string
	// Subprotocols lists the subprotocols the server speaks, in its order of
	// preference; the first of them the client offers is chosen (Sec-WebSocket-Protocol).
	// A client that offers only others is served without one.
	Subprotocols []string
	// Text makes Send and TrySend send text messages (which must be valid UTF-8) rather
	// than binary ones; Session.SetMessageType changes it per session.
	Text bool
	// Lines suits line protocols (the command line, chat): a text message is one line,
	// so Send drops one trailing line ending ("\r\n" or "\n") from a text message, and a
	// line filter takes an incoming message without one (filter.Finisher).
	Lines bool
	// Compression negotiates permessage-deflate (RFC 7692) with clients that offer it,
	// without context takeover (no compression state is kept between messages).
	// Messages of CompressionThreshold bytes or more are sent compressed; an incoming
	// message may not inflate past MaxRequestLength (1009, not memory).
	Compression bool
	// CompressionThreshold is the smallest message sent compressed. Default 256.
	CompressionThreshold int
	// PingInterval, when positive, pings a session that has sent nothing for this
	// long; if no frame comes back within PongTimeout the session closes with
	// CloseTimeOut. 0 (the default): no pings.
	PingInterval time.Duration
	// PongTimeout bounds the wait for a pong. Default PingInterval.
	PongTimeout time.Duration
	// CloseTimeout bounds how long a close started by the server waits for the client's
	// close frame before the connection is closed. Default 1s.
	CloseTimeout time.Duration
	// MaxHeaderBytes bounds the upgrade request's head; a longer one gets 431. Default
	// 8 KiB.
	MaxHeaderBytes int
}

// WebSocket defaults.
const (
	DefaultWebSocketPath           = "/ws"
	DefaultCompressionThreshold    = 256
	DefaultWebSocketCloseTimeout   = time.Second
	DefaultWebSocketMaxHeaderBytes = 8 << 10
)

// withDefaults validates a WebSocket listener's configuration and fills in its defaults.
func (w WebSocketConfig) withDefaults(field string) (WebSocketConfig, error) {
	if w.Path == "" {
		w.Path = DefaultWebSocketPath
	}
	if !strings.HasPrefix(w.Path, "/") {
		return w, configError(field+".Path", "%q does not start with /", w.Path)
	}
	for i, o := range w.Origins {
		if o == "" {
			return w, configError(field+".Origins", "entry %d is empty", i)
		}
	}
	if len(w.Subprotocols) > 255 {
		return w, configError(field+".Subprotocols", "has %d entries; at most 255", len(w.Subprotocols))
	}
	for i, p := range w.Subprotocols {
		if !validToken(p) {
			return w, configError(field+".Subprotocols", "entry %d (%q) is not a token", i, p)
		}
	}
	switch {
	case w.CompressionThreshold < 0:
		return w, configError(field+".CompressionThreshold", "must not be negative, got %d", w.CompressionThreshold)
	case w.CompressionThreshold == 0:
		w.CompressionThreshold = DefaultCompressionThreshold
	}
	switch {
	case w.PingInterval < 0:
		return w, configError(field+".PingInterval", "must not be negative (0 turns pings off), got %v", w.PingInterval)
	case w.PongTimeout < 0:
		return w, configError(field+".PongTimeout", "must not be negative, got %v", w.PongTimeout)
	case w.PongTimeout == 0:
		w.PongTimeout = w.PingInterval
	}
	switch {
	case w.CloseTimeout < 0:
		return w, configError(field+".CloseTimeout", "must not be negative, got %v", w.CloseTimeout)
	case w.CloseTimeout == 0:
		w.CloseTimeout = DefaultWebSocketCloseTimeout
	}
	switch {
	case w.MaxHeaderBytes < 0:
		return w, configError(field+".MaxHeaderBytes", "must not be negative, got %d", w.MaxHeaderBytes)
	case w.MaxHeaderBytes == 0:
		w.MaxHeaderBytes = DefaultWebSocketMaxHeaderBytes
	}
	w.Origins = append([]string(nil), w.Origins...)
	w.Subprotocols = append([]string(nil), w.Subprotocols...)
	return w, nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7F || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// allowsOrigin reports whether origin may connect.
func (w *WebSocketConfig) allowsOrigin(origin string) bool {
	if len(w.Origins) == 0 || origin == "" {
		return true
	}
	for _, o := range w.Origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
		if scheme, rest, ok := strings.Cut(o, "://*."); ok {
			suffix := "." + rest
			if len(origin) > len(scheme)+3+len(suffix) && strings.EqualFold(origin[:len(scheme)+3], scheme+"://") &&
				strings.HasSuffix(strings.ToLower(origin), strings.ToLower(suffix)) {
				return true
			}
		}
	}
	return false
}

// MessageType is the type of the WebSocket messages a session's Send and TrySend send.
type MessageType uint8

const (
	// MessageBinary: binary messages (opcode 2), the default.
	MessageBinary MessageType = iota
	// MessageText: text messages (opcode 1); what is sent must be valid UTF-8.
	MessageText
)

// ErrNotWebSocket is returned by WebSocket-only methods on other sessions.
var ErrNotWebSocket = errors.New("supersocket: not a WebSocket session")

// ErrInvalidUTF8 is returned by Send and TrySend for a text message that is not valid
// UTF-8; nothing is sent.
var ErrInvalidUTF8 = errors.New("supersocket: a text message must be valid UTF-8")

// WebSocketInfo describes a WebSocket session's opening handshake.
type WebSocketInfo struct {
	Target      string               // the request target: the path and any query
	Path        string               // the path alone
	Subprotocol string               // the subprotocol chosen, "" for none
	Header      textproto.MIMEHeader // the upgrade request's header fields (cookies, authorization…), less the handshake's own: Upgrade, Connection, Sec-WebSocket-*
	Compressed  bool                 // permessage-deflate was negotiated
}

// WebSocket returns the session's handshake details, or nil when it is not a WebSocket
// session. Safe from any goroutine; the result must not be modified.
func (s *Session[T]) WebSocket() *WebSocketInfo {
	st, ok := s.tr.(*stream[T])
	if !ok || st.ws == nil {
		return nil
	}
	w := st.ws
	r := w.rareState()
	r.infoOnce.Do(func() {
		r.info.Compressed = w.compressed
		if w.sub != 0 {
			r.info.Subprotocol = w.cfg.Subprotocols[w.sub-1]
		}
		// The handshake parsed the head once already: it cannot fail now.
		if req, _, _ := websocket.ParseRequest([]byte(w.head+"\r\n"), len(w.head)+3); req != nil {
			r.info.Target, r.info.Path, r.info.Header = req.Target, websocket.Path(req.Target), req.Header()
		}
	})
	return &r.info
}

// SetMessageType sets the type of the messages Send and TrySend send from now on, for a
// WebSocket session (the listener's WebSocketConfig.Text is the default). It returns
// ErrNotWebSocket for other sessions. Safe from any goroutine.
func (s *Session[T]) SetMessageType(t MessageType) error {
	st, ok := s.tr.(*stream[T])
	if !ok || st.ws == nil {
		return ErrNotWebSocket
	}
	st.ws.set(wsText, t == MessageText)
	return nil
}
