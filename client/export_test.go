package client

// SetStartTLSHooks installs the StartTLS test hooks (see testHookStartTLSSent) and
// returns a function that removes them.
func SetStartTLSHooks(sent, reply func()) (undo func()) {
	testHookStartTLSSent, testHookStartTLSReply = sent, reply
	return func() { testHookStartTLSSent, testHookStartTLSReply = nil, nil }
}
