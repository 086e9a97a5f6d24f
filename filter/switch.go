package filter

import "fmt"

// Switch returns a Factory of filters that pick, for every request, a sub-filter from the
// request's first byte, as in SuperSocket's SwitchReceiveFilter sample (frames starting
// with 'Y' and frames starting with '*' on one connection).
//
// Each route's Factory is called lazily, once per stream, with the same limit, and its
// filter is reused for every request of that route. The chosen sub-filter keeps the stream
// until it returns a request (or an error); the first byte of the next request then picks
// again. The first byte is part of the request the sub-filter sees. A first byte with no
// route is ErrMalformed. If a sub-filter implements [Switcher], Switch asks it for Next
// after each of its requests, and a non-nil result replaces it for later requests of the
// same route.
//
// Switch panics if routes is empty or holds a nil Factory. It copies routes, so later
// changes to the map have no effect.
func Switch(routes map[byte]Factory) Factory {
	if len(routes) == 0 {
		panic("filter: Switch: no routes")
	}
	t := &switchTable{}
	for b, fac := range routes {
		if fac == nil {
			panic(fmt.Sprintf("filter: Switch: nil Factory for first byte %#02x", b))
		}
		t.index[b] = uint16(len(t.factories) + 1)
		t.factories = append(t.factories, fac)
	}
	return func(limit int) Filter {
		return &switchFilter{table: t, subs: make([]Filter, len(t.factories)), limit: limit}
	}
}

// switchTable maps a first byte to a route, shared by all streams of a Factory.
type switchTable struct {
	// index holds 1 + the route's position in factories, 0 for no route.
	index     [256]uint16
	factories []Factory
}

type switchFilter struct {
	table *switchTable
	// subs holds each route's filter for this stream, nil until first used.
	subs  []Filter
	limit int
	// cur is 1 + the position of the route holding the stream, 0 when the next request's
	// first byte is still to pick one.
	cur int
}

// Filter implements [Filter].
func (f *switchFilter) Filter(data []byte) (Request, int, error) {
	if f.cur == 0 {
		if len(data) == 0 {
			return Request{}, 0, nil
		}
		r := int(f.table.index[data[0]])
		if r == 0 {
			return Request{}, 0, fmt.Errorf("%w: no filter for first byte %#02x", ErrMalformed, data[0])
		}
		if f.subs[r-1] == nil {
			f.subs[r-1] = f.table.factories[r-1](f.limit)
		}
		f.cur = r
	}
	sub := f.subs[f.cur-1]
	req, n, err := sub.Filter(data)
	if err != nil || n == 0 {
		if err != nil {
			f.cur = 0
		}
		return req, n, err
	}
	if s, ok := sub.(Switcher); ok {
		if next := s.Next(); next != nil {
			f.subs[f.cur-1] = next
		}
	}
	f.cur = 0
	return req, n, nil
}
