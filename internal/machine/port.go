package machine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A port chosen by binding port 0 and closing the listener comes from the
// kernel's ephemeral range, the range every outgoing connection and every
// other bind(0) draws from too: between the close and the child's own bind,
// a busy machine often hands it to someone else, and the child fails with
// "address already in use". FreePort draws from below that range instead,
// where only explicit binds go, and never hands the same port twice within
// reuseAfter in one process.

// ErrNoFreePort is returned when no port was free after many tries.
var ErrNoFreePort = errors.New("machine: no free loopback port found")

// reuseAfter is how long a port FreePort handed out is not handed out
// again by this process: its child may not have bound it yet.
const reuseAfter = 10 * time.Minute

// lowestPort is the bottom of the range FreePort draws from: above the
// registered ports most local services use.
const lowestPort = 20000

var handed struct {
	mu sync.Mutex
	at map[int]time.Time
}

// FreePort returns a TCP port on 127.0.0.1 that is free now, for a child
// process that must be told its port rather than report the one it bound.
// It is drawn at random below the kernel's ephemeral port range (read from
// /proc/sys/net/ipv4/ip_local_port_range; 32768 elsewhere), so outgoing
// connections and port-0 listeners cannot take it before the child binds
// it; where that range leaves too little room it falls back to a port-0
// bind. A port is not handed out twice by one process within ten minutes.
func FreePort() (int, error) {
	low := ephemeralLow()
	if low-lowestPort < 1000 {
		return ephemeralPort()
	}
	handed.mu.Lock()
	defer handed.mu.Unlock()
	if handed.at == nil {
		handed.at = map[int]time.Time{}
	}
	now := time.Now()
	for range 200 {
		p := lowestPort + rand.IntN(low-lowestPort)
		if t, ok := handed.at[p]; ok && now.Sub(t) < reuseAfter {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		handed.at[p] = now
		return p, nil
	}
	return 0, ErrNoFreePort
}

// ephemeralPort is the fallback: a port the kernel picked for a port-0 bind.
func ephemeralPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("machine: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow returns the bottom of the kernel's ephemeral port range, or
// Linux's default (32768) where it cannot be read; read once per process.
var ephemeralLow = sync.OnceValue(readEphemeralLow)

func readEphemeralLow() int {
	const def = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return def
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l <= 0 || h < l {
		return def
	}
	return l
}

// AddrInUse reports whether a child's log text says it could not bind its
// address because another socket holds it.
func AddrInUse(log string) bool {
	return strings.Contains(log, "address already in use") || strings.Contains(log, "Address already in use")
}
