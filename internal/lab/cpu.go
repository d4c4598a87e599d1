package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// saturatedBusy is the mean machine CPU use over a run at or above which the
// run is marked cpu_saturated: the machine, not the replicas' capacity
// model, was the bottleneck.
const saturatedBusy = 0.90

// cpuTimes reads the aggregate "cpu" line of /proc/stat: busy and total
// jiffies.
func cpuTimes() (busy, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("lab: cpu sampling: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != "cpu" {
			continue
		}
		var idle uint64
		for i, s := range fields[1:] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("lab: cpu sampling: %w", err)
			}
			total += v
			if i == 3 || i == 4 { // idle, iowait
				idle += v
			}
		}
		return total - idle, total, nil
	}
	return 0, 0, fmt.Errorf("lab: cpu sampling: no cpu line in /proc/stat")
}

// sampleCPU samples machine CPU use every interval until ctx ends and
// returns the mean busy fraction (0..1) and the number of samples. It
// returns an error when /proc/stat cannot be read (not Linux).
func sampleCPU(ctx context.Context, interval time.Duration) (float64, int, error) {
	b0, t0, err := cpuTimes()
	if err != nil {
		return 0, 0, err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	n := 0
	var sum float64
	for {
		select {
		case <-ctx.Done():
			if n == 0 {
				b1, t1, err := cpuTimes()
				if err != nil || t1 == t0 {
					return 0, 0, err
				}
				return float64(b1-b0) / float64(t1-t0), 1, nil
			}
			return sum / float64(n), n, nil
		case <-tick.C:
			b1, t1, err := cpuTimes()
			if err != nil {
				return 0, n, err
			}
			if t1 > t0 {
				sum += float64(b1-b0) / float64(t1-t0)
				n++
			}
			b0, t0 = b1, t1
		}
	}
}
