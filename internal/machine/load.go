package machine

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// LoadFactor returns how much longer than on an idle machine a wait should
// be allowed now: the 1-minute load average divided by the number of CPUs,
// at least 1 and at most limit. Where the load average cannot be read it
// returns 1.
func LoadFactor(limit float64) float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 1
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 1
	}
	return max(1, min(limit, load/float64(runtime.NumCPU())))
}

// Scaled returns d stretched by LoadFactor(limit): a deadline for work whose
// speed depends on how busy the machine is (starting a process, a test's
// whole run), so that it holds under load while a process that never
// answers is still reported, only later.
func Scaled(d time.Duration, limit float64) time.Duration {
	return time.Duration(float64(d) * LoadFactor(limit))
}
