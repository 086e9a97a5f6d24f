// Package websocket is RFC 6455's wire format, for the server's WebSocket transport and
// the client package: frame headers, masking, the opening handshake (the server's parser
// of an upgrade request, the client's check of the response), close frames, an
// incremental UTF-8 validator, and permessage-deflate (RFC 7692) parameters.
//
// It holds no connection state and starts no goroutine: the transports own the bytes and
// call these functions on their own buffers, so a frame is parsed, unmasked and handed on
// in place, without copying or allocating.
package websocket
