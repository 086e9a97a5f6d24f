// Package client is the other end of a supersocket server: a connection that frames what
// the server sends with the same receive filters (package filter) the server uses, a
// request/response helper, pushed messages, TLS, optional reconnection, and a bounded send
// queue like the server's. Tests, the bench tool and bots are written with it.
//
//	c, err := client.Dial(ctx, client.Config{Addr: "127.0.0.1:2012", Filter: filter.CommandLine()})
//	if err != nil { ... }
//	defer c.Close()
//	reply, err := c.Request(ctx, []byte("ADD 1 2\r\n")) // reply.Body == "3"
//
// # Goroutines
//
// A Conn runs one goroutine that reads and decodes (and, with Config.Reconnect, redials),
// and a writer goroutine only while queued bytes are waiting to be written:
//
//	Send / TrySend / Request ──► bounded send queue ──► writer (vectored writes)
//	                                                        │
//	server ◄────────────────────────────────────────────────┘
//	   │
//	   ▼
//	reader: filter ──► a waiting Request (its reply)
//	                └► OnMessage, or the queue Receive reads (pushed messages)
//
// Send, TrySend, Request, RequestID, Receive, Close and the accessors are safe from any
// goroutine. OnMessage and OnStateChange run on the reader goroutine, one call at a time,
// in order: while one runs nothing is read, so they must not wait for a reply (a Request
// from inside them cannot complete until its ctx ends) and must not call Close (it waits
// for that goroutine); start a goroutine for such work.
//
// # Replies
//
// By default replies are matched to requests in FIFO order: the server is expected to
// answer each request once, in the order it received them, as a supersocket server does.
// Request registers its waiter and queues its bytes in one step, so concurrent Requests
// from many goroutines pipeline on one connection and still get their own replies. A
// message that arrives while no Request waits is a pushed message; so is any message for
// which Config.IsPush reports true, which lets a protocol interleave events with replies.
//
// When a Request's ctx ends first it returns the ctx's error, and its place in the line is
// kept as a tombstone: the late reply, when it comes, is dropped rather than handed to the
// next Request. (So FIFO matching needs a reply for every request; over UDP, where a
// datagram may be lost, use ids.)
//
// Protocols that carry an id in each reply set Config.ReplyID and call RequestID with the
// id of the request they send; replies are then matched by id in any order, a reply whose
// id no longer waits (its request timed out) is dropped, and a message ReplyID does not
// claim is pushed.
//
// # Buffers
//
// Send, TrySend, Request and RequestID copy the caller's bytes before they return; the
// caller may reuse them at once. A [Message] is the receiver's own copy: unlike a
// filter.Request, its slices never alias a buffer the Conn reuses.
//
// # Closing
//
// Close is graceful over TCP: queued bytes are flushed, the client half-closes, and the
// Conn reads on until the server closes its side, bounded by Config.CloseLinger. (Closing
// outright while the server still sends would reset the connection, and a server that
// sees a reset may drop requests it has not handled yet.)
//
// # Failures and reconnection
//
// A read or write error, the server closing the connection, or bytes the filter refuses
// (a protocol error, reported as an error wrapping [ErrProtocol] and the filter's error)
// end the connection. Requests waiting for a reply then fail with an error wrapping
// [ErrConnectionLost] and the cause; sends still queued are dropped.
//
// Without Config.Reconnect the Conn is then closed for good: every later call returns an
// error wrapping [ErrClosed] and the cause, which Err also reports. With Reconnect the Conn
// redials the same address with exponential backoff and jitter until it succeeds or Close
// is called; meanwhile sends and requests fail at once with [ErrNotConnected] (nothing is
// queued for the next connection, since a new connection usually needs its own
// handshake first, e.g. a login the application sends on StateConnected). The receive
// filter starts afresh on every connection.
//
// # WebSocket
//
// With a ws:// or wss:// Config.Addr the Conn speaks WebSocket (RFC 6455) with the same
// API. Dial (and every redial) makes the opening handshake: a fresh Sec-WebSocket-Key,
// the server's 101 and Sec-WebSocket-Accept checked, Config.WebSocket's subprotocols,
// Origin and header fields offered; a refusal is a [HandshakeError] with the HTTP status.
// Each Send is one message, binary, or text with WebSocketConfig.Text; every frame the
// client sends is masked with a fresh key. Each message the server sends — fragments
// reassembled, at most MaxRequestLength bytes — is handed to the filter as one unit that
// holds whole frames, like a UDP datagram, except that bytes at a message's end that the
// filter cannot complete are its last frame when the filter is a filter.Finisher (a
// line without its ending, as a server in WebSocketConfig.Lines mode sends). Pings are
// answered with pongs.
//
// Close makes the close handshake: its close frame (1000) goes after what is queued, and
// replies keep arriving until the server's close frame, bounded by CloseLinger. When the
// server closes first the client answers with the server's code, and the cause of the
// connection's end is a [*CloseError] carrying the code and reason (1001 when a
// supersocket server shuts down), wrapped as any cause is. A server that breaks the
// protocol is sent the close code that says why (1002, 1007, 1009) and the cause wraps
// ErrProtocol.
//
// # UDP
//
// With a "udp" network each Send is one datagram, written before Send returns (there is no
// queue: a datagram write does not wait for the peer), and each datagram received is
// decoded on its own: it must hold whole frames, one or several.
package client
