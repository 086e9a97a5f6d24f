package filter

import (
	"encoding/binary"
	"fmt"
	"math"
)

// LengthField describes the length field of a fixed header, for [LengthPrefixed].
type LengthField struct {
	// HeaderSize is the size of the whole fixed header, length field included; 0 means
	// the header is just the field (Offset+Size).
	HeaderSize int
	// Offset is where the length field starts within the header.
	Offset int
	// Size is the length field's size in bytes: 1, 2, 4 or 8. The value is unsigned.
	Size int
	// LittleEndian selects little-endian byte order; the default is big-endian (network
	// order).
	LittleEndian bool
	// IncludesHeader says the value is the size of the whole frame, header included;
	// otherwise it counts the body only.
	IncludesHeader bool
}

// headerSize returns the effective header size.
func (f LengthField) headerSize() int {
	if f.HeaderSize == 0 {
		return f.Offset + f.Size
	}
	return f.HeaderSize
}

// validate panics on a spec that cannot describe a header.
func (f LengthField) validate() {
	switch f.Size {
	case 1, 2, 4, 8:
	default:
		panic(fmt.Sprintf("filter: LengthField: Size %d must be 1, 2, 4 or 8", f.Size))
	}
	if f.Offset < 0 {
		panic(fmt.Sprintf("filter: LengthField: negative Offset %d", f.Offset))
	}
	if f.HeaderSize < 0 {
		panic(fmt.Sprintf("filter: LengthField: negative HeaderSize %d", f.HeaderSize))
	}
	if f.Offset > math.MaxInt-f.Size {
		panic(fmt.Sprintf("filter: LengthField: Offset %d is too large", f.Offset))
	}
	if f.HeaderSize != 0 && f.HeaderSize < f.Offset+f.Size {
		panic(fmt.Sprintf("filter: LengthField: HeaderSize %d cannot hold a %d-byte field at offset %d",
			f.HeaderSize, f.Size, f.Offset))
	}
}

// value reads the field from a complete header.
func (f LengthField) value(header []byte) uint64 {
	b := header[f.Offset : f.Offset+f.Size]
	var order binary.ByteOrder = binary.BigEndian
	if f.LittleEndian {
		order = binary.LittleEndian
	}
	switch f.Size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(order.Uint16(b))
	case 4:
		return uint64(order.Uint32(b))
	default:
		return order.Uint64(b)
	}
}

// LengthPrefixed returns a Factory of filters for frames whose fixed header carries the
// frame's length in an unsigned integer field, as f describes. It is [FixedHeader] with a
// ready bodyLength, and sets the same Request fields: Header, Body and Frame.
//
// A field that cannot be right fails the stream: a total (IncludesHeader) smaller than the
// header is ErrMalformed; a value too large for an int is ErrTooLarge (it could never fit a
// limit), and so is any frame over the factory's limit, as soon as the header is complete.
//
// LengthPrefixed panics if f is invalid: Size not 1, 2, 4 or 8, a negative Offset or
// HeaderSize, or a field that does not fit within HeaderSize.
func LengthPrefixed(f LengthField) Factory {
	f.validate()
	hs := f.headerSize()
	return FixedHeader(hs, func(header []byte) (int, error) {
		v := f.value(header)
		if f.IncludesHeader {
			if v < uint64(hs) {
				return 0, fmt.Errorf("%w: length field declares a %d-byte frame, shorter than its %d-byte header", ErrMalformed, v, hs)
			}
			v -= uint64(hs)
		}
		if v > math.MaxInt {
			return 0, fmt.Errorf("%w: length field declares %d bytes", ErrTooLarge, v)
		}
		return int(v), nil
	})
}

// Uint16BE returns a Factory for frames prefixed by the body's length as a big-endian
// uint16: LengthPrefixed(LengthField{Size: 2}).
func Uint16BE() Factory { return LengthPrefixed(LengthField{Size: 2}) }

// Uint16LE returns a Factory for frames prefixed by the body's length as a little-endian
// uint16: LengthPrefixed(LengthField{Size: 2, LittleEndian: true}).
func Uint16LE() Factory { return LengthPrefixed(LengthField{Size: 2, LittleEndian: true}) }

// Uint32BE returns a Factory for frames prefixed by the body's length as a big-endian
// uint32: LengthPrefixed(LengthField{Size: 4}).
func Uint32BE() Factory { return LengthPrefixed(LengthField{Size: 4}) }

// Uint32LE returns a Factory for frames prefixed by the body's length as a little-endian
// uint32: LengthPrefixed(LengthField{Size: 4, LittleEndian: true}).
func Uint32LE() Factory { return LengthPrefixed(LengthField{Size: 4, LittleEndian: true}) }
