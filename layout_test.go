package supersocket

import (
	"testing"
	"unsafe"
)

// TestSessionHotFieldsLeadTheStruct keeps the fields that every request reads or writes
// at the front of the Session, before its send queue, and the queue within the first two
// cache lines (see the Session struct). At 1000 connections each wake of a session finds
// it cold in the cache; a hot field moved behind the cold ones costs a miss per request,
// which shows only as a few percent of CPU in the bench matrix, so it is pinned here.
func TestSessionHotFieldsLeadTheStruct(t *testing.T) {
	var s Session[struct{}]
	queue := unsafe.Offsetof(s.queue)
	if queue > 128 {
		t.Errorf("the send queue starts at byte %d; want it within the first 128", queue)
	}
	hot := map[string]uintptr{
		"loop":       unsafe.Offsetof(s.loop),
		"closed":     unsafe.Offsetof(s.closed),
		"held":       unsafe.Offsetof(s.held),
		"hopped":     unsafe.Offsetof(s.hopped),
		"armed":      unsafe.Offsetof(s.armed),
		"filterSet":  unsafe.Offsetof(s.filterSet),
		"served":     unsafe.Offsetof(s.served),
		"srv":        unsafe.Offsetof(s.srv),
		"readSize":   unsafe.Offsetof(s.readSize),
		"armedAt":    unsafe.Offsetof(s.armedAt),
		"lastActive": unsafe.Offsetof(s.lastActive),
		"filter":     unsafe.Offsetof(s.filter),
		"switcher":   unsafe.Offsetof(s.switcher),
		"upgrade":    unsafe.Offsetof(s.upgrade),
		"rd":         unsafe.Offsetof(s.rd),
	}
	for name, off := range hot {
		if off >= queue {
			t.Errorf("Session.%s at byte %d lies behind the send queue (byte %d)", name, off, queue)
		}
	}
	cold := map[string]uintptr{
		"id":       unsafe.Offsetof(s.id),
		"conn":     unsafe.Offsetof(s.conn),
		"listener": unsafe.Offsetof(s.listener),
		"start":    unsafe.Offsetof(s.start),
		"done":     unsafe.Offsetof(s.done),
	}
	for name, off := range cold {
		if off < queue {
			t.Errorf("Session.%s (not used per request) at byte %d sits among the hot fields", name, off)
		}
	}
}
