package machine

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestFreePortIsBelowTheEphemeralRangeAndNotRepeated(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowestPort || p >= low {
			t.Fatalf("port %d outside [%d, %d): other sockets' ephemeral ports could take it", p, lowestPort, low)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}

func TestAddrInUse(t *testing.T) {
	for log, want := range map[string]bool{
		"statelab: app: listen tcp 127.0.0.1:29123: bind: address already in use":                     true,
		"# Could not create server TCP listening socket 127.0.0.1:7000: bind: Address already in use": true,
		"statelab: app: open store: connection refused":                                               false,
	} {
		if got := AddrInUse(log); got != want {
			t.Errorf("AddrInUse(%q) = %v, want %v", log, got, want)
		}
	}
}

func TestScaledStaysWithinItsBounds(t *testing.T) {
	for _, limit := range []float64{1, 4} {
		d := Scaled(10*time.Second, limit)
		if d < 10*time.Second || d > time.Duration(limit*float64(10*time.Second)) {
			t.Errorf("Scaled(10s, %v) = %v, want between 10s and %v×", limit, d, limit)
		}
	}
}
