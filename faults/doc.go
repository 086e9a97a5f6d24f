// Package faults is supersocket's fault matrix: each test in it starts a real server on
// loopback (127.0.0.1 only), does to it one thing that goes wrong in production, and
// checks that the damage stays where it belongs — the session at fault is closed with the
// documented CloseReason, every other session keeps being served, and no goroutine, file
// descriptor or unbounded memory is left behind.
//
// The package holds no code of its own; it is the tests:
//
//	fault                                         test
//	RST in the middle of a frame (in and out)     TestRSTMidFrame
//	100 clients send half a frame and close       TestHalfFrameThenClose
//	pipelined requests, then a half-close (FIN)   TestHalfCloseGetsEveryReply
//	slowloris (FirstRequestTimeout, IdleTimeout)  TestSlowloris
//	connection flood past MaxConnections          TestConnectionFlood
//	one address flooding past MaxConnectionsPerIP TestConnectionFloodPerIP
//	panicking handlers                            TestPanickingHandler
//	garbage ClientHello, plaintext to TLS         TestTLSGarbage
//	Shutdown under full load                      TestShutdownUnderLoad
//	Stats readable while Shutdown drains          TestStatsDuringShutdown
//	stop with handlers blocked in app code        TestStopWithBlockedHandlers
//	WebSocket: garbage frames, frames cut by RST, TestWebSocketFaults
//	  slow and half-open upgrades
//	bytes accepted before a graceful Close        TestDataIntegrity
//	a client that never reads                     TestNonReaderMemoryBounded
//	a peer reset while a handler waits in Send    TestPeerResetWhileSendBlocked
//	the four back-pressure policies               TestBackPressurePolicies
//
// Each test logs its figures (sessions affected, bytes lost, heap and RSS before and
// after, goroutines and file descriptors left, latencies) with t.Logf, so
//
//	go test -v -run . ./faults
//
// prints the numbers behind the README's Reliability table. The whole package runs in
// well under a minute with -race on two cores, so CI runs it with the rest of the suite.
// SUPERSOCKET_FAULTS_SCALE=N multiplies the client counts and data sizes by N for a
// longer run (about 80 s with -race at N=10); the assertions stay the same.
//
// Every figure that depends on the machine (a latency, a heap size) is logged, and only a
// generous bound is asserted, so a loaded machine never fails a correct server; the
// properties (no request lost, every byte delivered, the right close reason, nothing
// left over) are asserted exactly.
package faults
