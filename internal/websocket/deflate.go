package websocket

import (
	"strconv"
	"strings"
)

// DeflateResponse is the Sec-WebSocket-Extensions value a server answers when it accepts
// permessage-deflate (RFC 7692): without context takeover in either direction, so that
// every message is compressed and inflated on its own and a session keeps no compression
// state between messages (the window is memory a mostly idle session would hold).
const DeflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// AcceptDeflate reports whether one of the offers (Sec-WebSocket-Extensions elements) is a
// permessage-deflate the server can accept with DeflateResponse. An offer that limits the
// server's window below 15 bits cannot be: compress/flate always uses a 32 KiB window. An
// offer with an unknown or repeated parameter is declined, as RFC 7692 asks.
func AcceptDeflate(offers []string) bool {
	for _, offer := range offers {
		params := strings.Split(offer, ";")
		if strings.TrimSpace(params[0]) != "permessage-deflate" {
			continue
		}
		if deflateParamsOK(params[1:]) {
			return true
		}
	}
	return false
}

func deflateParamsOK(params []string) bool {
	seen := map[string]bool{}
	for _, p := range params {
		name, value, hasValue := strings.Cut(strings.TrimSpace(p), "=")
		name = strings.TrimSpace(name)
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if seen[name] {
			return false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return false
			}
		case "server_max_window_bits":
			if bits, err := strconv.Atoi(value); !hasValue || err != nil || bits != 15 {
				return false
			}
		case "client_max_window_bits":
			if hasValue {
				if bits, err := strconv.Atoi(value); err != nil || bits < 8 || bits > 15 {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// DeflateTail is the end of a sync-flushed deflate stream that a permessage-deflate
// sender strips from each message and the receiver appends before inflating.
var DeflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}
