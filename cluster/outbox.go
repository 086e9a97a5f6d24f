package cluster

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The sender's side of cross-node calls (SendTo, Post, Close, kicks): batched per
// destination node.
//
// A call appends an entry to the outbox of the session's node (one per destination,
// under its own mutex) and wakes the link's flusher, a goroutine that publishes
// whatever the outboxes hold: one NATS message per node per flush, or more when a
// batch reaches maxBatchBytes. While it publishes, new calls fill the outboxes again,
// so under load one NATS message, and one round trip, carries many calls; without
// load a call goes out alone, one goroutine hop after it was made.
//
// Entries of one node are appended, and published, in call order, and the owner
// handles its inbox in order: the calls one goroutine makes to one session arrive in
// the order made, whether they wait for the verdict (SendTo) or not (Post).
//
// A batch is the sender's node ID, then its entries: kind, sequence (0 for a Post,
// which is not acknowledged), session ID, and for a send the message, for a close its
// reason, for a kick the user (strings and the message length-prefixed, numbers
// uvarints).
//
// A call that waits has a sequence number, given under the outbox's mutex, so a
// node's batches hold increasing sequences. A batch with such calls carries the reply
// subject P.node.<self>.ack.<node>.<last sequence>: the owner acknowledges the calls
// on P.node.<self>.ack.b (see onInbox), and when nothing serves its inbox NATS answers
// the reply subject at once with no-responders, and every call to that node up to that
// sequence fails with ErrNodeGone.

// maxBatchBytes is the size at which an outbox starts a new batch (or the server's max
// payload, if smaller: fits checks that one entry fits alone).
const maxBatchBytes = 32 << 10

// outbox holds the calls to one node that the flusher has not published yet.
type outbox struct {
	node    string
	subject string // P.node.<node>.in

	mu          sync.Mutex
	cur         *[]byte // the batch being filled; nil when there is none
	first, last uint64  // the sequences of cur's waiting calls; 0 when none waits
	full        []batch // batches that reached maxBatchBytes
	queued      bool    // on the flusher's list
	dead        bool    // dropped from the link's table: look the node's up again
}

// batch is one NATS message of calls to a node.
type batch struct {
	b           *[]byte
	first, last uint64 // the sequences of its waiting calls; 0 when none waits
}

// flusher is the link's list of outboxes with something to publish.
type flusher struct {
	mu    sync.Mutex
	dirty []*outbox
	wake  chan struct{} // capacity 1
	adds  atomic.Uint64 // entries appended: the flusher yields while it grows
}

// flushYields bounds how many times the flusher yields for more entries before it
// publishes: with none, it runs as soon as the first woken caller has appended (the
// scheduler runs a goroutine just readied first), and batches hold one or two calls.
const flushYields = 4

func (f *flusher) add(ob *outbox) {
	f.mu.Lock()
	f.dirty = append(f.dirty, ob)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// take appends the outboxes to publish to dst and empties the list.
func (f *flusher) take(dst []*outbox) []*outbox {
	f.mu.Lock()
	dst = append(dst, f.dirty...)
	clear(f.dirty)
	f.dirty = f.dirty[:0]
	f.mu.Unlock()
	return dst
}

// outboxes is the link's table of outboxes, by node. It is copied on write (a new node,
// a node dropped), so that a call finds its outbox with one atomic load.
type outboxes map[string]*outbox

// outboxOf returns node's outbox.
func (l *link) outboxOf(node string) *outbox {
	if ob := (*l.outboxes.Load())[node]; ob != nil {
		return ob
	}
	l.outMu.Lock()
	defer l.outMu.Unlock()
	old := *l.outboxes.Load()
	if ob := old[node]; ob != nil {
		return ob
	}
	ob := &outbox{node: node, subject: l.prefix + ".node." + node + ".in"}
	m := make(outboxes, len(old)+1)
	maps.Copy(m, old)
	m[node] = ob
	l.outboxes.Store(&m)
	return ob
}

// dropOutbox forgets the outbox of a node found gone, if it is empty, so that calls
// to IDs of nodes that no longer exist do not fill the table.
func (l *link) dropOutbox(node string) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	old := *l.outboxes.Load()
	ob := old[node]
	if ob == nil {
		return
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.cur == nil && len(ob.full) == 0 && !ob.queued {
		ob.dead = true
		m := maps.Clone(old)
		delete(m, node)
		l.outboxes.Store(&m)
	}
}

// entry is one call.
type entry struct {
	kind   byte
	sid    string
	msg    []byte // kindSend
	reason byte   // kindClose
	user   string // kindKick
}

// entryOverhead bounds the bytes an entry adds besides its strings and message.
const entryOverhead = 1 + 3*binary.MaxVarintLen64 + 1

// size is an upper bound of the entry's bytes in a batch.
func (e *entry) size() int { return entryOverhead + len(e.sid) + len(e.msg) + len(e.user) }

// enqueue appends e to node's outbox; w is the caller's waiter, nil for a Post. It
// returns false when the link is down (a waiting call could not be registered).
func (l *link) enqueue(node string, w *waiter, e *entry) bool {
	var ob *outbox
	for {
		ob = l.outboxOf(node)
		ob.mu.Lock()
		if !ob.dead {
			break
		}
		ob.mu.Unlock()
	}
	defer ob.mu.Unlock()
	var seq uint64
	if w != nil {
		var ok bool
		if seq, ok = l.pending.add(w); !ok {
			return false
		}
	}
	if ob.cur != nil && int64(len(*ob.cur)+e.size()) > min(maxBatchBytes, l.maxPayload) {
		ob.full = append(ob.full, batch{ob.cur, ob.first, ob.last})
		ob.cur, ob.first, ob.last = nil, 0, 0
	}
	if ob.cur == nil {
		ob.cur = getFrame()
		*ob.cur = appendString(*ob.cur, l.self)
	}
	b := append(*ob.cur, e.kind)
	b = binary.AppendUvarint(b, seq)
	b = appendString(b, e.sid)
	switch e.kind {
	case kindSend:
		b = binary.AppendUvarint(b, uint64(len(e.msg)))
		b = append(b, e.msg...)
	case kindClose:
		b = append(b, e.reason)
	case kindKick:
		b = appendString(b, e.user)
	}
	*ob.cur = b
	if seq != 0 {
		if ob.first == 0 {
			ob.first = seq
		}
		ob.last = seq
	}
	l.flush.adds.Add(1)
	if !ob.queued {
		ob.queued = true
		l.flush.add(ob)
	}
	return true
}

// flushLoop is the link's flusher: it publishes the outboxes' batches until the node
// leaves, then once more.
func (n *Node[T]) flushLoop(l *link) {
	defer l.loops.Done()
	var obs []*outbox
	var batches []batch
	for {
		quit := false
		select {
		case <-l.quit:
			quit = true
		case <-l.flush.wake:
			// The callers woken with this goroutine (by one acknowledgement batch) are
			// queued to run on this P: let them append before the batch is taken, as
			// long as they keep coming.
			for range flushYields {
				before := l.flush.adds.Load()
				runtime.Gosched()
				if l.flush.adds.Load() == before {
					break
				}
			}
		}
		obs = l.flush.take(obs[:0])
		for _, ob := range obs {
			ob.mu.Lock()
			batches = append(batches, ob.full...)
			clear(ob.full)
			ob.full = ob.full[:0]
			if ob.cur != nil {
				batches = append(batches, batch{ob.cur, ob.first, ob.last})
				ob.cur, ob.first, ob.last = nil, 0, 0
			}
			ob.queued = false
			ob.mu.Unlock()
			for _, bt := range batches {
				n.publishBatch(l, ob, bt)
			}
			clear(batches)
			batches = batches[:0]
		}
		clear(obs)
		if quit {
			return
		}
	}
}

// publishBatch publishes one batch; if that fails, its waiting calls fail.
func (n *Node[T]) publishBatch(l *link, ob *outbox, bt batch) {
	var err error
	switch {
	case !l.connected():
		// Not into nats.go's reconnect buffer: the waiting calls fail now (see watch),
		// and the calls that did not wait are dropped rather than delivered late.
		err = ErrDisconnected
	case bt.last != 0:
		l.reply = append(append(append(l.reply[:0], l.ackPrefix...), ob.node...), '.')
		l.reply = strconv.AppendUint(l.reply, bt.last, 10)
		err = l.nc.PublishRequest(ob.subject, unsafeString(l.reply), *bt.b)
	default:
		err = l.nc.Publish(ob.subject, *bt.b)
	}
	putFrame(bt.b)
	if err != nil {
		n.stats.errors.Add(1)
		if bt.last != 0 {
			if err != ErrDisconnected {
				err = fmt.Errorf("%w: %v", ErrDisconnected, err)
			}
			l.pending.fail(ob.node, err, func(w *waiter) bool { return w.seq >= bt.first && w.seq <= bt.last })
		}
		return
	}
	n.stats.msgsOut.Add(1)
}

// waiter is a call waiting for its acknowledgement. Waiters are pooled with their
// channel and timer: a call allocates neither.
//
// A SendTo waits on done; a SendToAsync call has cb instead, which whoever takes the
// waiter out of the table calls (answer).
type waiter struct {
	done  chan error // buffered: whoever takes the waiter out of the table sends once
	node  string
	tick  uint64 // pendingCalls.tick when the call was made
	seq   uint64
	timer *time.Timer // for a context without a deadline

	// SendToAsync's.
	cb      func(error)
	sid     string          // the session: ErrNoSession's detail
	ctx     context.Context // its context, when it can end (until add has its watch)
	watch   *ctxWatch       // the watch of ctx; nil when ctx cannot end
	expires bool            // ctx has no deadline: RequestTimeout applies (expire)
}

// resetAsync clears SendToAsync's fields before the waiter goes back to the pool.
func (w *waiter) resetAsync() {
	w.cb, w.sid, w.ctx, w.watch, w.expires = nil, "", nil, nil, false
}

// ctxWatch fails the SendToAsync calls of one context (by its Done channel) when it
// ends: one context.AfterFunc per context, however many calls use it, kept while
// calls of it wait and, for up to maxIdleWatches contexts, until the next heartbeat
// after the last one (expire).
type ctxWatch struct {
	ctx  context.Context
	done <-chan struct{}
	stop func() bool
	n    int // calls of it in the table
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan error, 1)} }}

// pendingCalls are the calls of this node waiting for acknowledgements, by sequence.
//
// Sequences are given in order, and calls are answered in about that order, so the
// table is a ring indexed by sequence: a call finds its slot without hashing, and
// leaves it without a map's deletion. A call still waiting when its slot comes round
// again (one that waits for a slow node while pendingRing others are made) moves to
// the overflow map.
type pendingCalls struct {
	mu       sync.Mutex
	seq      uint64
	ring     *[pendingRing]*waiter // by seq % pendingRing; allocated by the first call
	overflow map[uint64]*waiter    // waiters that the ring's newer calls displaced
	down     atomic.Bool           // the link is down: no call may wait
	// tick counts heartbeat intervals (failSilent): a coarse clock for the waiters,
	// cheaper than reading the time on every call.
	tick atomic.Uint64

	answers []answer // onAck's scratch: its goroutine only

	// SendToAsync's bound: async counts its calls from reserve to answer, at most
	// maxAsync; callers past it wait for room, closed (and renewed) by a release that
	// finds roomWanted.
	async      atomic.Int64
	maxAsync   int64
	roomWanted atomic.Bool
	roomMu     sync.Mutex
	room       chan struct{}

	watches     map[<-chan struct{}]*ctxWatch // SendToAsync's contexts, by Done channel
	idleWatches int                           // watches without calls (n == 0)
	sendErrors  *atomic.Uint64                // the node's failed remote sends
	expireTicks uint64                        // RequestTimeout in ticks
	timeout     time.Duration                 // RequestTimeout
}

// pendingRing is the size of the pending calls' ring: several times the calls a
// node has waiting at once under load (Config.MaxInFlight's default of SendToAsync's,
// and the SendTo callers).
const pendingRing = 16384

type answer struct {
	w      *waiter
	status byte
}

func (p *pendingCalls) add(w *waiter) (uint64, bool) {
	w.tick = p.tick.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down.Load() {
		return 0, false
	}
	if p.ring == nil {
		p.ring = new([pendingRing]*waiter)
	}
	if w.ctx != nil {
		p.watchLocked(w)
	}
	p.seq++
	w.seq = p.seq
	slot := &p.ring[p.seq%pendingRing]
	if old := *slot; old != nil {
		if p.overflow == nil {
			p.overflow = make(map[uint64]*waiter)
		}
		p.overflow[old.seq] = old
	}
	*slot = w
	return p.seq, true
}

// takeLocked removes the waiter of seq from the table; nil if it has gone (answered,
// or given up).
func (p *pendingCalls) takeLocked(seq uint64) *waiter {
	if p.ring == nil {
		return nil
	}
	slot := &p.ring[seq%pendingRing]
	if w := *slot; w != nil && w.seq == seq {
		*slot = nil
		p.leftLocked(w)
		return w
	}
	if w := p.overflow[seq]; w != nil {
		delete(p.overflow, seq)
		p.leftLocked(w)
		return w
	}
	return nil
}

// leftLocked notes that w has left the table. A context's watch that no call uses
// any more is kept for the context's next calls (until the next heartbeat: expire),
// unless maxIdleWatches are kept already: then it is stopped now, so that contexts
// made per call do not pile up.
func (p *pendingCalls) leftLocked(w *waiter) {
	wt := w.watch
	if wt == nil {
		return
	}
	if wt.n--; wt.n > 0 || p.watches[wt.done] != wt {
		return
	}
	if p.idleWatches < maxIdleWatches {
		p.idleWatches++
		return
	}
	wt.stop()
	delete(p.watches, wt.done)
}

// maxIdleWatches bounds the watches of contexts without waiting calls that are kept.
const maxIdleWatches = 256

// answer gives a call that has left the table its verdict: a SendTo's on its channel;
// a SendToAsync's to its callback, after its waiter and its room are released.
func (p *pendingCalls) answer(w *waiter, err error) {
	cb := w.cb
	if cb == nil {
		w.done <- err
		return
	}
	sid := w.sid
	w.resetAsync()
	waiterPool.Put(w)
	p.release()
	if err != nil {
		if p.sendErrors != nil {
			p.sendErrors.Add(1)
		}
		if err == ErrNoSession {
			err = fmt.Errorf("%w: %s", ErrNoSession, sid)
		}
	}
	cb(err)
}

// reserve takes room for one SendToAsync call, waiting while maxAsync calls wait for
// their verdicts; it fails when ctx ends first.
func (p *pendingCalls) reserve(ctx context.Context) error {
	for {
		if p.async.Add(1) <= p.maxAsync {
			return nil
		}
		p.async.Add(-1)
		p.roomMu.Lock()
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.roomWanted.Store(true)
		p.roomMu.Unlock()
		// Either this sees a release's decrement, or that release sees roomWanted.
		if p.async.Load() < p.maxAsync {
			continue
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives back the room of a SendToAsync call, waking the callers that wait for
// room.
func (p *pendingCalls) release() {
	if p.async.Add(-1) < p.maxAsync && p.roomWanted.Load() {
		p.roomMu.Lock()
		if p.room != nil {
			close(p.room)
			p.room = nil
		}
		p.roomWanted.Store(false)
		p.roomMu.Unlock()
	}
}

// watchLocked has w's context watched: one watch per context, shared by its calls.
func (p *pendingCalls) watchLocked(w *waiter) {
	done := w.ctx.Done()
	wt := p.watches[done]
	if wt == nil {
		if p.watches == nil {
			p.watches = make(map[<-chan struct{}]*ctxWatch)
		}
		wt = &ctxWatch{ctx: w.ctx, done: done}
		// The function runs on its own goroutine, which takes p.mu after add has
		// released it: a context that has ended already finds w in the table.
		wt.stop = context.AfterFunc(w.ctx, func() { p.cancelWatch(wt) })
		p.watches[done] = wt
	} else if wt.n == 0 {
		p.idleWatches--
	}
	wt.n++
	w.watch, w.ctx = wt, nil
}

// cancelWatch fails the calls of a context that has ended.
func (p *pendingCalls) cancelWatch(wt *ctxWatch) {
	p.mu.Lock()
	if p.watches[wt.done] == wt {
		delete(p.watches, wt.done)
		if wt.n == 0 {
			p.idleWatches--
		}
	}
	if wt.n == 0 { // the usual end of a context: its calls have their verdicts
		p.mu.Unlock()
		return
	}
	var gone []*waiter
	p.each(func(w *waiter) {
		if w.watch == wt {
			gone = append(gone, w)
		}
	})
	for _, w := range gone {
		p.takeLocked(w.seq)
	}
	p.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	slices.SortFunc(gone, bySeq)
	err := fmt.Errorf("%w: %w", ErrTimeout, wt.ctx.Err())
	for _, w := range gone {
		p.answer(w, err)
	}
}

// bySeq orders calls as made: the order in which their verdicts are given.
func bySeq(a, b *waiter) int { return cmp.Compare(a.seq, b.seq) }

// expire runs every heartbeat interval, after failSilent: it fails the SendToAsync
// calls without a deadline that have waited RequestTimeout (in ticks), and stops the
// watches of contexts that no call uses any more.
func (p *pendingCalls) expire() {
	now := p.tick.Load()
	p.mu.Lock()
	var old []*waiter
	p.each(func(w *waiter) {
		if w.cb != nil && w.expires && now-w.tick > p.expireTicks {
			old = append(old, w)
		}
	})
	for _, w := range old {
		p.takeLocked(w.seq)
	}
	p.stopWatchesLocked(false)
	p.mu.Unlock()
	slices.SortFunc(old, bySeq)
	for _, w := range old {
		p.answer(w, fmt.Errorf("%w: node %q did not answer within %v", ErrTimeout, w.node, p.timeout))
	}
}

// stopWatchesLocked stops the watches that no call uses (all: every one).
func (p *pendingCalls) stopWatchesLocked(all bool) {
	for done, wt := range p.watches {
		if wt.n == 0 || all {
			wt.stop()
			delete(p.watches, done)
		}
	}
	p.idleWatches = 0
}

// take removes the waiter of seq; nil if it has gone (answered, or given up).
func (p *pendingCalls) take(seq uint64) *waiter {
	p.mu.Lock()
	w := p.takeLocked(seq)
	p.mu.Unlock()
	return w
}

// each calls f for every waiting call, with p.mu held.
func (p *pendingCalls) each(f func(*waiter)) {
	if p.ring != nil {
		for _, w := range p.ring {
			if w != nil {
				f(w)
			}
		}
	}
	for _, w := range p.overflow {
		f(w)
	}
}

// acknowledge answers the calls of an acknowledgement batch (sequence, status pairs),
// taking them from the table under one lock. It reports whether the batch was well
// formed.
func (p *pendingCalls) acknowledge(data []byte) bool {
	r := reader{b: data}
	p.mu.Lock()
	for len(r.b) > 0 {
		seq := r.uvarint()
		status := r.byte()
		if r.bad {
			break
		}
		if w := p.takeLocked(seq); w != nil {
			p.answers = append(p.answers, answer{w, status})
		}
	}
	p.mu.Unlock()
	for _, a := range p.answers {
		p.answer(a.w, ackErr(a.status, ""))
	}
	clear(p.answers)
	p.answers = p.answers[:0]
	return !r.bad
}

// fail answers the calls to node that match with err.
func (p *pendingCalls) fail(node string, err error, match func(*waiter) bool) {
	p.mu.Lock()
	var gone []*waiter
	p.each(func(w *waiter) {
		if w.node == node && match(w) {
			gone = append(gone, w)
		}
	})
	for _, w := range gone {
		p.takeLocked(w.seq)
	}
	p.mu.Unlock()
	slices.SortFunc(gone, bySeq)
	for _, w := range gone {
		p.answer(w, err)
	}
}

// failSilent runs every heartbeat interval: it answers the calls that have waited at
// least k intervals for a node that live does not list (it crashed as they were sent,
// and NATS could not tell).
func (p *pendingCalls) failSilent(k uint64, live func(node string) bool) {
	now := p.tick.Add(1)
	old := func(w *waiter) bool { return now-w.tick > k }
	p.mu.Lock()
	var nodes []string
	p.each(func(w *waiter) {
		if old(w) && !slices.Contains(nodes, w.node) && !live(w.node) {
			nodes = append(nodes, w.node)
		}
	})
	p.mu.Unlock()
	for _, node := range nodes {
		p.fail(node, &goneError{node: node, session: true}, old)
	}
}

// failAll answers every waiting call with err.
func (p *pendingCalls) failAll(err error) {
	p.mu.Lock()
	var ws []*waiter
	p.each(func(w *waiter) {
		p.leftLocked(w)
		ws = append(ws, w)
	})
	if p.ring != nil {
		clear(p.ring[:])
	}
	p.overflow = nil
	p.stopWatchesLocked(true)
	p.mu.Unlock()
	slices.SortFunc(ws, bySeq)
	for _, w := range ws {
		p.answer(w, err)
	}
}

// setDown makes calls fail at once (down) or wait again.
func (p *pendingCalls) setDown(down bool) {
	p.mu.Lock()
	p.down.Store(down)
	p.mu.Unlock()
}
