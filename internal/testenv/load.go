package testenv

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"sync/atomic"
	"testing"
	"time"
)

// HTTPLoad runs b.N requests made by next against a server from
// parallelism×GOMAXPROCS goroutines sharing one keep-alive transport, and
// reports req/s and this process's CPU time per request (cpu-µs/req: less
// sensitive than req/s to other load on a shared machine). Any answer but
// 200 fails the benchmark.
func HTTPLoad(b *testing.B, parallelism int, next func(worker, i int) *http.Request) {
	b.Helper()
	httpLoad(b, parallelism, false, next)
}

// HTTPLoadSessions is HTTPLoad with one cookie jar per goroutine: each
// worker is one client keeping its session across its requests.
func HTTPLoadSessions(b *testing.B, parallelism int, next func(worker, i int) *http.Request) {
	b.Helper()
	httpLoad(b, parallelism, true, next)
}

func httpLoad(b *testing.B, parallelism int, jars bool, next func(worker, i int) *http.Request) {
	b.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 512}
	b.Cleanup(transport.CloseIdleConnections)
	var failures, workers atomic.Int64
	b.SetParallelism(parallelism)
	b.ResetTimer()
	start, cpuStart := time.Now(), ProcessCPU()
	b.RunParallel(func(pb *testing.PB) {
		w := int(workers.Add(1))
		client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		if jars {
			client.Jar, _ = cookiejar.New(nil) // never fails with nil options
		}
		for i := 0; pb.Next(); i++ {
			resp, err := client.Do(next(w, i))
			if err != nil {
				failures.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64((ProcessCPU()-cpuStart).Microseconds())/float64(b.N), "cpu-µs/req")
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
}
