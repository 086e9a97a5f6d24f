package loadgen

import (
	"net"
	"testing"
)

func TestSourceAddrs(t *testing.T) {
	ips, err := sourceAddrs("auto", "127.0.0.1:9000", 50000)
	if err != nil || len(ips) != 3 || !ips[2].Equal(net.IPv4(127, 0, 0, 3)) {
		t.Errorf("auto for 50000 = %v, %v", ips, err)
	}
	for _, tc := range []struct {
		target string
		n      int
	}{{"127.0.0.1:9000", 1000}, {"[::1]:9000", 50000}} {
		if ips, err := sourceAddrs("auto", tc.target, tc.n); err != nil || ips != nil {
			t.Errorf("auto %v = %v, %v; want none", tc, ips, err)
		}
	}
	if ips, err := sourceAddrs("127.0.0.2, 127.0.0.3", "127.0.0.1:1", 1); err != nil || len(ips) != 2 {
		t.Errorf("list = %v, %v", ips, err)
	}
	if _, err := sourceAddrs("nope", "127.0.0.1:1", 1); err == nil {
		t.Error("bad address accepted")
	}
}
