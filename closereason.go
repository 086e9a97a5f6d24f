package supersocket

import "strconv"

// CloseReason says why a session ended. The values and meanings are SuperSocket's nine.
type CloseReason uint8

const (
	// CloseUnknown is a placeholder: no session is closed for it by the framework. An
	// application may pass it to Close when no other reason fits.
	CloseUnknown CloseReason = iota
	// CloseServerShutdown: the server was shut down or stopped.
	CloseServerShutdown
	// CloseClientClosing: the peer closed the connection (read EOF).
	CloseClientClosing
	// CloseServerClosing: the application closed the session (Session.Close).
	CloseServerClosing
	// CloseApplicationError: a handler panicked.
	CloseApplicationError
	// CloseSocketError: reading or writing the socket failed (reset, broken pipe).
	CloseSocketError
	// CloseTimeOut: the session was idle past IdleTimeout, or a Send timed out and
	// CloseOnSendTimeout is set.
	CloseTimeOut
	// CloseProtocolError: the receive filter refused the bytes (malformed or too long).
	CloseProtocolError
	// CloseInternalError: the framework could not serve the session: the filter factory
	// failed or a filter panicked.
	CloseInternalError

	numCloseReasons = iota
)

var closeReasonNames = [numCloseReasons]string{
	"Unknown", "ServerShutdown", "ClientClosing", "ServerClosing", "ApplicationError",
	"SocketError", "TimeOut", "ProtocolError", "InternalError",
}

// String returns the reason's SuperSocket name, such as "ProtocolError".
func (r CloseReason) String() string {
	if int(r) < len(closeReasonNames) {
		return closeReasonNames[r]
	}
	return "CloseReason(" + strconv.Itoa(int(r)) + ")"
}
