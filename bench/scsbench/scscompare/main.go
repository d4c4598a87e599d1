// Command scscompare runs statelab's session middleware and alexedwards/scs
// v2 against the same Redis in alternating rounds and prints their
// throughput side by side, then a contended run counting lost updates.
// Alternating rounds (and swapping which goes first) keep the drift of a busy
// machine from favouring either.
//
//	go run ./bench/scsbench/scscompare -redis redis://127.0.0.1:6379/0
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/statelab/statelab/bench/scsbench"
)

func main() {
	var (
		redisURL    = flag.String("redis", envOr("STATELAB_REDIS", "redis://127.0.0.1:6379/0"), "Redis `URL` both libraries use")
		rounds      = flag.Int("rounds", 5, "alternating throughput rounds")
		duration    = flag.Duration("duration", 3*time.Second, "length of each library's turn in a round")
		concurrency = flag.Int("concurrency", 32, "concurrent clients, each with its own session, in the throughput rounds")
		workers     = flag.Int("workers", 32, "concurrent clients of one session in the lost-update run")
		increments  = flag.Int("increments", 100, "increments per client in the lost-update run")
		payload     = flag.Int("payload", 1024, "session payload `bytes` besides the counter")
	)
	flag.Parse()
	if err := run(*redisURL, *rounds, *duration, *concurrency, *workers, *increments, *payload); err != nil {
		fmt.Fprintln(os.Stderr, "scscompare:", err)
		os.Exit(1)
	}
}

func run(redisURL string, rounds int, d time.Duration, concurrency, workers, increments, payload int) error {
	ims, cleanup, err := scsbench.New(scsbench.Options{RedisURL: redisURL, PayloadLen: payload})
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Printf("nproc %d, GOMAXPROCS %d, %s; payload %d B; %d clients × %v per turn\n\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), payload, concurrency, d)
	fmt.Println("| round | statelab req/s | scs req/s | ratio |")
	fmt.Println("|---|---|---|---|")
	var ours, theirs, ratios []float64
	for round := 1; round <= rounds; round++ {
		rate := map[string]float64{}
		order := ims
		if round%2 == 0 {
			order = []scsbench.Impl{ims[1], ims[0]}
		}
		for _, im := range order {
			ok, failed, elapsed := scsbench.Throughput(im, concurrency, d)
			if failed > 0 {
				return fmt.Errorf("%s: %d requests failed", im.Name, failed)
			}
			rate[im.Name] = float64(ok) / elapsed.Seconds()
		}
		ours, theirs = append(ours, rate["statelab"]), append(theirs, rate["scs"])
		ratios = append(ratios, rate["statelab"]/rate["scs"])
		fmt.Printf("| %d | %.0f | %.0f | %.2f× |\n", round, rate["statelab"], rate["scs"], ratios[len(ratios)-1])
	}
	fmt.Printf("| median | %.0f | %.0f | %.2f× |\n\n", median(ours), median(theirs), median(ratios))

	fmt.Printf("Contended: %d clients × %d increments of one session's counter\n\n", workers, increments)
	fmt.Println("| library | sent | acknowledged | failed | final count | lost | req/s |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, im := range ims {
		r, err := scsbench.LostUpdates(im, workers, increments)
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %d | %d | %d | %d | %d (%.1f%%) | %.0f |\n", r.Impl, r.Sent, r.Acked, r.Failed, r.Final,
			r.Lost, 100*float64(r.Lost)/float64(max(r.Acked, 1)), r.Throughput)
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
