package websocket

import "encoding/binary"

// UTF8 validates a text message as its fragments arrive: it fails as soon as the bytes
// cannot be the start of valid UTF-8 (RFC 3629), not only at the message's end, and a
// rune split between fragments is carried over. The zero value is ready; Reset before
// each message.
type UTF8 struct {
	need   uint8 // continuation bytes still expected
	lo, hi byte  // the range of the next continuation byte
}

// Reset readies v for a new message.
func (v *UTF8) Reset() { *v = UTF8{} }

// Write checks b, the next bytes of the message, and reports whether they may still be
// valid UTF-8.
func (v *UTF8) Write(b []byte) bool {
	i := 0
	for i < len(b) {
		if v.need == 0 {
			// ASCII fast path: eight bytes at a time.
			for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 == 0 {
				i += 8
			}
			if i == len(b) {
				break
			}
			c := b[i]
			i++
			switch {
			case c < 0x80:
			case c >= 0xC2 && c <= 0xDF:
				v.need, v.lo, v.hi = 1, 0x80, 0xBF
			case c == 0xE0:
				v.need, v.lo, v.hi = 2, 0xA0, 0xBF
			case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
				v.need, v.lo, v.hi = 2, 0x80, 0xBF
			case c == 0xED:
				v.need, v.lo, v.hi = 2, 0x80, 0x9F // no surrogates
			case c == 0xF0:
				v.need, v.lo, v.hi = 3, 0x90, 0xBF
			case c >= 0xF1 && c <= 0xF3:
				v.need, v.lo, v.hi = 3, 0x80, 0xBF
			case c == 0xF4:
				v.need, v.lo, v.hi = 3, 0x80, 0x8F // up to U+10FFFF
			default:
				return false
			}
			continue
		}
		c := b[i]
		if c < v.lo || c > v.hi {
			return false
		}
		i++
		v.need--
		v.lo, v.hi = 0x80, 0xBF
	}
	return true
}

// Complete reports whether the bytes so far end on a rune boundary: a message is valid
// when every Write returned true and Complete does at its end.
func (v *UTF8) Complete() bool { return v.need == 0 }
