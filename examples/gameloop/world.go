package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/supersocket-go/supersocket"
)

// player is a session's own state (Session.Data): only its handlers touch it.
type player struct {
	room *room // nil while in no room
}

type session = supersocket.Session[player]

// world holds the rooms. mu guards rooms and closed; each room guards its own state. Lock
// order: world.mu, then room.mu.
type world struct {
	tick   time.Duration
	mu     sync.Mutex
	rooms  map[string]*room
	closed bool
	loops  sync.WaitGroup // one per running room loop
}

// room is one game room with its loop.
type room struct {
	name string
	quit chan struct{} // closed (under world.mu) to stop the loop

	mu      sync.Mutex
	n       uint64 // ticks so far
	members map[*session]*avatar
}

// avatar is a player's state inside a room, owned by the room (under room.mu).
type avatar struct {
	name   string
	x, y   int
	dx, dy int // input since the last tick
}

func newWorld(tick time.Duration) *world {
	return &world{tick: tick, rooms: make(map[string]*room)}
}

// join puts s into the room called name, starting the room's loop if it is new.
func (w *world) join(s *session, roomName, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("the server is stopping")
	}
	r := w.rooms[roomName]
	if r == nil {
		r = &room{name: roomName, quit: make(chan struct{}), members: make(map[*session]*avatar)}
		w.rooms[roomName] = r
		w.loops.Add(1)
		go r.loop(w.tick, &w.loops)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.members {
		if a.name == name {
			return fmt.Errorf("%s is already in %s", name, roomName)
		}
	}
	r.members[s] = &avatar{name: name}
	s.Data().room = r
	return nil
}

// leave takes s out of its room, if any; the room's loop stops with its last player.
// Called from s's own handlers only (Request, Closed).
func (w *world) leave(s *session) *room {
	r := s.Data().room
	if r == nil {
		return nil
	}
	s.Data().room = nil
	w.mu.Lock()
	defer w.mu.Unlock()
	r.mu.Lock()
	delete(r.members, s)
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty && w.rooms[r.name] == r {
		delete(w.rooms, r.name)
		close(r.quit)
	}
	return r
}

// close stops every room loop and waits for them; later joins fail.
func (w *world) close() {
	w.mu.Lock()
	w.closed = true
	for name, r := range w.rooms {
		delete(w.rooms, name)
		close(r.quit)
	}
	w.mu.Unlock()
	w.loops.Wait()
}

// roomCount returns the number of running rooms.
func (w *world) roomCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.rooms)
}

// loop ticks until quit is closed.
func (r *room) loop(every time.Duration, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
			r.step()
		}
	}
}

// step advances the room by one tick and pushes the state to every member. TrySend never
// blocks, so a member that does not read cannot slow the room down: it misses ticks
// (its queue is full) and will see a gap in the tick numbers.
func (r *room) step() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	var b strings.Builder
	b.WriteString("TICK ")
	b.WriteString(strconv.FormatUint(r.n, 10))
	avatars := slices.SortedFunc(maps.Values(r.members), func(a, b *avatar) int { return strings.Compare(a.name, b.name) })
	for _, a := range avatars {
		a.x, a.y, a.dx, a.dy = a.x+a.dx, a.y+a.dy, 0, 0
		fmt.Fprintf(&b, " %s=%d,%d", a.name, a.x, a.y)
	}
	b.WriteString("\r\n")
	line := []byte(b.String())
	for s := range r.members {
		s.TrySend(line)
	}
}

// move records input for the next tick.
func (r *room) move(s *session, dx, dy int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.members[s]; a != nil {
		a.dx, a.dy = a.dx+dx, a.dy+dy
	}
}

// request handles one command line.
func (w *world) request(s *session, req supersocket.Request) {
	reply := func(line string) { s.Send([]byte(line + "\r\n")) }
	p := req.Params()
	switch strings.ToUpper(req.Key) {
	case "JOIN":
		switch {
		case len(p) != 2:
			reply("ERR usage: JOIN room name")
		case s.Data().room != nil:
			reply("ERR already in " + s.Data().room.name + "; LEAVE first")
		default:
			if err := w.join(s, p[0], p[1]); err != nil {
				reply("ERR " + err.Error())
				return
			}
			reply("OK joined " + p[0])
		}
	case "MOVE":
		r := s.Data().room
		if r == nil {
			reply("ERR join a room first")
			return
		}
		if len(p) != 2 {
			reply("ERR usage: MOVE dx dy")
			return
		}
		dx, err1 := strconv.Atoi(p[0])
		dy, err2 := strconv.Atoi(p[1])
		if err1 != nil || err2 != nil || dx < -1 || dx > 1 || dy < -1 || dy > 1 {
			reply("ERR dx and dy are -1, 0 or 1")
			return
		}
		r.move(s, dx, dy)
		reply("OK")
	case "LEAVE":
		r := w.leave(s)
		if r == nil {
			reply("ERR join a room first")
			return
		}
		// The player was out of the room before this reply was queued: no tick follows it.
		reply("OK left " + r.name)
	case "PING":
		reply("PONG")
	case "QUIT":
		reply("BYE")
		s.Close(supersocket.CloseServerClosing)
	default:
		reply("ERR unknown command: " + req.Key)
	}
}
