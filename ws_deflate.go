package supersocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/supersocket-go/supersocket/internal/pool"
	"github.com/supersocket-go/supersocket/internal/websocket"
)

// permessage-deflate without context takeover: each message is compressed and inflated
// on its own, so the compressors and decompressors are shared by every session through
// pools instead of one pair (hundreds of KiB) per session.

var (
	deflaters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed) // BestSpeed: a valid level, no error
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
)

// errInflateTooLarge is a compressed message that inflates past the limit.
var errInflateTooLarge = errors.New("a compressed message inflates past MaxRequestLength")

// deflate compresses the n bytes of parts into a pooled buffer, without the sync flush's
// tail (RFC 7692 §7.2.1).
func deflate(parts [][]byte, n int) []byte {
	out := &pooledBuffer{b: pool.Get(n/2 + 64)[:0]}
	fw := deflaters.Get().(*flate.Writer)
	fw.Reset(out)
	for _, p := range parts {
		fw.Write(p) // a pooledBuffer never fails
	}
	fw.Flush()
	deflaters.Put(fw)
	b := out.b
	if bytes.HasSuffix(b, websocket.DeflateTail[:]) {
		b = b[:len(b)-len(websocket.DeflateTail)]
	}
	return b
}

// inflate decompresses a message into a pooled buffer of at most limit bytes.
func inflate(compressed []byte, limit int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(compressed), bytes.NewReader(websocket.DeflateTail[:]))
	fr := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(fr)
	fr.(flate.Resetter).Reset(src, nil)
	out := pool.Get(min(max(2*len(compressed), 512), limit+1))[:0]
	for {
		if len(out) == cap(out) {
			if len(out) > limit {
				pool.Put(out)
				return nil, fmt.Errorf("%w (%d bytes)", errInflateTooLarge, limit)
			}
			bigger := append(pool.Get(min(2*cap(out), limit+1))[:0], out...)
			pool.Put(out)
			out = bigger
		}
		n, err := fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if len(out) > limit {
			pool.Put(out)
			return nil, fmt.Errorf("%w (%d bytes)", errInflateTooLarge, limit)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			// The sync-flushed stream ends without a final block: what was read is
			// the message.
			return out, nil
		case err != nil:
			pool.Put(out)
			return nil, fmt.Errorf("a compressed message does not inflate: %w", err)
		}
	}
}

// pooledBuffer is an io.Writer that appends to a pooled buffer, growing it from the pool.
type pooledBuffer struct{ b []byte }

func (p *pooledBuffer) Write(b []byte) (int, error) {
	if len(p.b)+len(b) > cap(p.b) {
		bigger := append(pool.Get(max(2*cap(p.b), len(p.b)+len(b)))[:0], p.b...)
		pool.Put(p.b)
		p.b = bigger
	}
	p.b = append(p.b, b...)
	return len(b), nil
}
