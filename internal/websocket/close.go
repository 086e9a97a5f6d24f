package websocket

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// CloseCode is a close frame's status code (RFC 6455 §7.4).
type CloseCode uint16

// The close codes the transports send or check.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupported     CloseCode = 1003
	CloseNoStatus        CloseCode = 1005 // never sent: the close frame had no code
	CloseAbnormal        CloseCode = 1006 // never sent: the connection ended without a close frame
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseMessageTooBig   CloseCode = 1009
	CloseMandatoryExt    CloseCode = 1010
	CloseInternalError   CloseCode = 1011
)

// String returns the code's number and, for the defined ones, its name.
func (c CloseCode) String() string {
	names := map[CloseCode]string{
		CloseNormal: "normal closure", CloseGoingAway: "going away", CloseProtocolError: "protocol error",
		CloseUnsupported: "unsupported data", CloseNoStatus: "no status", CloseAbnormal: "abnormal closure",
		CloseInvalidPayload: "invalid payload", ClosePolicyViolation: "policy violation",
		CloseMessageTooBig: "message too big", CloseMandatoryExt: "mandatory extension",
		CloseInternalError: "internal error",
	}
	if n, ok := names[c]; ok {
		return strconv.Itoa(int(c)) + " (" + n + ")"
	}
	return strconv.Itoa(int(c))
}

// validOnWire reports whether a peer may send c in a close frame (RFC 6455 §7.4.1 and
// the IANA registry): 1000–1003, 1007–1011 (1012–1014 registered since), 3000–4999.
func validOnWire(c CloseCode) bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// ParseClose reads a close frame's payload: no payload is CloseNoStatus; otherwise a
// 2-byte code that a peer may send, then a UTF-8 reason. A payload that breaks those rules
// is a *ProtocolError (CloseProtocolError, or CloseInvalidPayload for a reason that is not
// UTF-8).
func ParseClose(payload []byte) (CloseCode, string, error) {
	switch {
	case len(payload) == 0:
		return CloseNoStatus, "", nil
	case len(payload) == 1:
		return 0, "", protocolError("a 1-byte close payload")
	}
	code := CloseCode(binary.BigEndian.Uint16(payload))
	if !validOnWire(code) {
		return 0, "", protocolError("close code %d may not be sent", code)
	}
	reason := payload[2:]
	if !utf8.Valid(reason) {
		return 0, "", &ProtocolError{Code: CloseInvalidPayload, Reason: "close reason is not UTF-8"}
	}
	return code, string(reason), nil
}

// AppendClose appends a close frame's payload: code and reason, the reason cut to fit a
// control frame at a rune boundary. CloseNoStatus gives an empty payload.
func AppendClose(dst []byte, code CloseCode, reason string) []byte {
	if code == CloseNoStatus {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	if len(reason) > MaxControlPayload-2 {
		reason = reason[:MaxControlPayload-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return append(dst, reason...)
}
