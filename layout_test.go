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
	var s Session[struct{}]
	tcp := unsafe.Offsetof(s.tcp)
	queue := tcp + unsafe.Offsetof(s.tcp.queue)
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
		"tcp.s":        tcp + unsafe.Offsetof(s.tcp.s),
		"tcp.rd":       tcp + unsafe.Offsetof(s.tcp.rd),
		"tcp.readSize": tcp + unsafe.Offsetof(s.tcp.readSize),
		"tcp.armedAt":  tcp + unsafe.Offsetof(s.tcp.armedAt),
		"tcp.held":     tcp + unsafe.Offsetof(s.tcp.held),
		"tcp.armed":    tcp + unsafe.Offsetof(s.tcp.armed),
		"tcp.idleWait": tcp + unsafe.Offsetof(s.tcp.idleWait),
	}
	for name, off := range hot {
		if off >= queue {
			t.Errorf("Session.%s at byte %d lies behind the send queue (byte %d)", name, off, queue)
		}
	}
	cold := map[string]uintptr{
		"tcp.conn":    tcp + unsafe.Offsetof(s.tcp.conn),
		"tcp.upgrade": tcp + unsafe.Offsetof(s.tcp.upgrade),
		"id":          unsafe.Offsetof(s.id),
		"listener":    unsafe.Offsetof(s.listener),
		"start":       unsafe.Offsetof(s.start),
		"done":        unsafe.Offsetof(s.done),
	}
	for name, off := range cold {
		if off < queue {
			t.Errorf("Session.%s (not used per request) at byte %d sits among the hot fields", name, off)
		}
	}
}
