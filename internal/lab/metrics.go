package lab

import (
	"sort"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// sample is one timed request of the workload.
type sample struct {
	at       int64  // scheduled send time, ns on the run clock
	lat      int64  // from the scheduled send time to the answer, ns
	err      bool   // not a 2xx answer
	answer4  bool   // a 4xx answer: the server answered, about the request
	cause    string // why it failed (causes.go); "" when it did not
	servedBy string
}

// recorder collects samples in shards, each with its own HdrHistogram, so
// that concurrent shoppers rarely contend; shards are merged at the end.
type recorder struct {
	shards []*shard
	from   int64 // samples scheduled before this (the warm-up) are not measured
}

type shard struct {
	mu          sync.Mutex
	hist        *hdrhistogram.Histogram
	samples     []sample
	cookieBytes int64
	cookieN     int64
}

// Latencies are recorded in microseconds, from 1µs to 10 minutes, with three
// significant digits.
func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 600_000_000, 3) }

func newRecorder(n int) *recorder {
	r := &recorder{shards: make([]*shard, n)}
	for i := range r.shards {
		r.shards[i] = &shard{hist: newHistogram()}
	}
	return r
}

// record adds s to the shard of worker w.
func (r *recorder) record(w int, s sample, cookieBytes int) {
	if s.at < r.from {
		return
	}
	s.at -= r.from
	sh := r.shards[w%len(r.shards)]
	sh.mu.Lock()
	_ = sh.hist.RecordValue(max(1, s.lat/1000))
	sh.samples = append(sh.samples, s)
	sh.cookieBytes += int64(cookieBytes)
	sh.cookieN++
	sh.mu.Unlock()
}

// merged returns the merged histogram, every measured sample in scheduled
// order (times relative to the end of the warm-up), and
// the mean Cookie header size per request.
func (r *recorder) merged() (*hdrhistogram.Histogram, []sample, float64) {
	h := newHistogram()
	var all []sample
	var cb, cn int64
	for _, sh := range r.shards {
		sh.mu.Lock()
		h.Merge(sh.hist)
		all = append(all, sh.samples...)
		cb += sh.cookieBytes
		cn += sh.cookieN
		sh.mu.Unlock()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	mean := 0.0
	if cn > 0 {
		mean = float64(cb) / float64(cn)
	}
	return h, all, mean
}

// Bucket is one slice of the run's timeline.
type Bucket struct {
	// Start is the bucket's start, seconds from the run's start.
	Start float64 `json:"start"`
	// Requests and Errors count requests scheduled in the bucket.
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// P99 is the 99th percentile latency in milliseconds (0 when empty).
	P99 float64 `json:"p99_ms"`
	// Served counts requests per replica (X-Served-By).
	Served map[string]int `json:"served"`
}

// timeline cuts samples into buckets of width ns over [0, end).
func timeline(samples []sample, width, end int64) []Bucket {
	if width <= 0 || end <= 0 {
		return nil
	}
	n := int((end + width - 1) / width)
	out := make([]Bucket, n)
	lats := make([][]int64, n)
	for i := range out {
		out[i].Start = float64(int64(i)*width) / 1e9
		out[i].Served = map[string]int{}
	}
	for _, s := range samples {
		i := int(s.at / width)
		if i < 0 || i >= n {
			continue
		}
		out[i].Requests++
		if s.err {
			out[i].Errors++
		}
		if s.servedBy != "" {
			out[i].Served[s.servedBy]++
		}
		lats[i] = append(lats[i], s.lat)
	}
	for i := range out {
		out[i].P99 = float64(percentile(lats[i], 0.99)) / 1e6
	}
	return out
}

// percentile returns the q-quantile of xs (nearest rank), 0 for none. It
// sorts xs.
func percentile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// recoveryNS measures how long after fault the error rate stayed above its
// pre-fault level: the end of the last bucket after the fault whose error
// rate exceeds the baseline (the rate before the fault) by more than one
// percentage point, minus the fault time. Zero when it never did.
func recoveryNS(samples []sample, fault, end int64) int64 {
	const width = int64(100e6)
	var preReq, preErr int
	for _, s := range samples {
		if s.at < fault {
			preReq++
			if s.err {
				preErr++
			}
		}
	}
	base := 0.0
	if preReq > 0 {
		base = float64(preErr) / float64(preReq)
	}
	n := int((end-fault+width-1)/width) + 1
	req := make([]int, n)
	errs := make([]int, n)
	for _, s := range samples {
		if s.at < fault || s.at >= end {
			continue
		}
		i := int((s.at - fault) / width)
		req[i]++
		if s.err {
			errs[i]++
		}
	}
	last := -1
	for i := range req {
		if req[i] > 0 && float64(errs[i])/float64(req[i]) > base+0.01 {
			last = i
		}
	}
	if last < 0 {
		return 0
	}
	return int64(last+1) * width
}

// shares returns each replica's share of the samples served in [from, to),
// and the imbalance: the busiest replica's count over the mean count of
// replicas (the replicas listed in all, so an idle one counts as zero).
func shares(samples []sample, from, to int64, all []string) (map[string]float64, float64) {
	counts := map[string]int{}
	for _, id := range all {
		counts[id] = 0
	}
	total := 0
	for _, s := range samples {
		if s.at < from || s.at >= to || s.servedBy == "" {
			continue
		}
		counts[s.servedBy]++
		total++
	}
	share := map[string]float64{}
	if total == 0 {
		return share, 0
	}
	maxc := 0
	for id, c := range counts {
		share[id] = float64(c) / float64(total)
		maxc = max(maxc, c)
	}
	mean := float64(total) / float64(len(counts))
	return share, float64(maxc) / mean
}
