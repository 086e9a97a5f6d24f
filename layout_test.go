package supersocket

import (
	"testing"
	"unsafe"
)

// TestSessionHotFieldsLeadTheStruct keeps the fields that every request reads or writes
// at the front of the Session, then the TCP transport's hot fields, before its send
// queue, and the queue within the first two cache lines (see the Session struct). At 1000
// connections each wake of a session finds it cold in the cache; a hot field moved behind
// the cold ones costs a miss per request, which shows only as a few percent of CPU in the
// bench matrix, so it is pinned here.
func TestSessionHotFieldsLeadTheStruct(t *testing.T) {
	// A TCP session's allocation: the Session, its stream, the rest (streamSession).
	var ss streamSession[struct{}]
	var s Session[struct{}] // ss's first field
	tcp := unsafe.Offsetof(ss.stream) + unsafe.Offsetof(ss.stream.tcp)
	queue := tcp + unsafe.Offsetof(ss.stream.tcp.queue)
	if queue > 128 {
		t.Errorf("the send queue starts at byte %d; want it within the first 128", queue)
	}
	hot := map[string]uintptr{
		"closed":       unsafe.Offsetof(s.closed),
		"handling":     unsafe.Offsetof(s.handling),
		"served":       unsafe.Offsetof(s.served),
		"switching":    unsafe.Offsetof(s.switching),
		"srv":          unsafe.Offsetof(s.srv),
		"tr":           unsafe.Offsetof(s.tr),
		"lastActive":   unsafe.Offsetof(s.lastActive),
		"frames":       unsafe.Offsetof(s.frames),
		"tcp.s":        tcp + unsafe.Offsetof(ss.stream.tcp.s),
		"tcp.rd":       tcp + unsafe.Offsetof(ss.stream.tcp.rd),
		"tcp.readSize": tcp + unsafe.Offsetof(ss.stream.tcp.readSize),
		"tcp.armedAt":  tcp + unsafe.Offsetof(ss.stream.tcp.armedAt),
		"tcp.held":     tcp + unsafe.Offsetof(ss.stream.tcp.held),
		"tcp.armed":    tcp + unsafe.Offsetof(ss.stream.tcp.armed),
		"tcp.idleWait": tcp + unsafe.Offsetof(ss.stream.tcp.idleWait),
	}
	for name, off := range hot {
		if off >= queue {
			t.Errorf("Session.%s at byte %d lies behind the send queue (byte %d)", name, off, queue)
		}
	}
	cold := map[string]uintptr{
		"tcp.conn":    tcp + unsafe.Offsetof(ss.stream.tcp.conn),
		"tcp.upgrade": tcp + unsafe.Offsetof(ss.stream.tcp.upgrade),
		"info":        unsafe.Offsetof(ss.info), // id, listener, start, done…
	}
	for name, off := range cold {
		if off < queue {
			t.Errorf("Session.%s (not used per request) at byte %d sits among the hot fields", name, off)
		}
	}
}

// TestWebSocketLayerSize keeps a WebSocket session one size class above a TCP session:
// the WebSocket layer rides in the session's allocation (wsSession), and 80 bytes on top
// of the streamSession fill the next class (640 bytes). Idle memory per WebSocket
// connection is a target against raw TCP's (docs/performance.md); a field that pushes
// the layer past 80 bytes costs every idle WebSocket session 64 bytes more — move it to
// wsRare, made when a session first needs it.
func TestWebSocketLayerSize(t *testing.T) {
	var w wsConn[struct{}]
	var ss streamSession[struct{}]
	var ws wsSession[struct{}]
	if n := unsafe.Sizeof(w); n > 80 {
		t.Errorf("wsConn is %d bytes; want at most 80", n)
	}
	if n, base := unsafe.Sizeof(ws), unsafe.Sizeof(ss); n > 640 || base > 576 {
		t.Errorf("wsSession is %d bytes over streamSession's %d; want at most 640 over 576", n, base)
	}
}
