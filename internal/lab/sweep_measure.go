package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/statelab/statelab/internal/cluster"
	"github.com/statelab/statelab/internal/stores"
)

// Resources is what the sweep measured on the machine, the processes and
// the store during one probe's measured part: the evidence its limiter is
// named from (see classifyLimiter).
type Resources struct {
	// MachineCPU is the machine's mean CPU use, 0..1; -1 when not sampled.
	MachineCPU float64 `json:"machine_cpu"`
	// SlotUtil is the replicas' capacity model in use: the time requests
	// held a slot over slots × the probe, 0..1, mean over the replicas;
	// SlotUtilMax is the busiest replica's. Both are 0 when the replicas
	// have no --max-inflight.
	SlotUtil    float64 `json:"slot_util"`
	SlotUtilMax float64 `json:"slot_util_max"`
	// RequestImbalance is the busiest replica's requests (those that held
	// a slot) over the mean: a hot replica gets more requests, where a
	// replica the machine starves holds its slots longer for the same
	// requests.
	RequestImbalance float64 `json:"request_imbalance"`
	// SlotHoldMS is the mean time a request held its slot: --work plus
	// the handler (store calls, replication) plus any CPU wait.
	SlotHoldMS float64 `json:"slot_hold_ms"`
	// Rejected counts requests the replicas refused with 503 because every
	// slot and queue place was taken.
	Rejected int64 `json:"rejected"`
	// ProcessCPU is CPU use in cores (1.0 = one core busy) of the
	// balancer, all replicas together, the store's server process (Redis
	// started by the lab, or as Redis reports itself) and the lab itself.
	ProcessCPU map[string]float64 `json:"process_cpu"`
	// StoreOpsPerS is the store's own count of work per second: Redis
	// commands (INFO total_commands_processed), PostgreSQL transactions
	// committed (pg_stat_database.xact_commit); 0 for other stores.
	StoreOpsPerS float64 `json:"store_ops_per_s"`
	// ReplicationPerS is writes copied to backups per second (replicated);
	// ReplicationMS is the mean time one copy took; ReplicationBytesPerS
	// the bytes the replicas sent their backups per second (the encoded
	// replication requests); ReplicationWaitMS the replication time per
	// request that held a slot: how much of SlotHoldMS went to copying.
	ReplicationPerS      float64 `json:"replication_per_s"`
	ReplicationMS        float64 `json:"replication_ms"`
	ReplicationBytesPerS float64 `json:"replication_bytes_per_s"`
	ReplicationWaitMS    float64 `json:"replication_wait_ms"`
	// StoreLockCounted says the replicas count their waits for SQLite's
	// single writer (the store is SQLite); StoreLockWaitMS is that wait per
	// request that held a slot (writes refused SQLITE_BUSY waiting to try
	// again, plus writes queued for their process's writer connection),
	// and StoreBusyPerS the SQLITE_BUSY retries per second.
	StoreLockCounted bool    `json:"store_lock_counted,omitempty"`
	StoreLockWaitMS  float64 `json:"store_lock_wait_ms"`
	StoreBusyPerS    float64 `json:"store_busy_per_s"`
}

// The keys of Resources.ProcessCPU.
const (
	procBalancer = "balancer"
	procReplicas = "replicas"
	procStore    = "store"
	procLab      = "lab"
)

// snapshot is one reading of every counter Resources is computed from.
type snapshot struct {
	at       time.Time
	cpu      map[string]float64 // process CPU seconds by procX key
	replicas map[string]replicaCounters
	storeOps float64
	storeCPU float64 // CPU seconds Redis reports for itself; -1 unknown
}

// replicaCounters are the counters one replica's /metrics exports.
type replicaCounters struct {
	busy, held, slots, rejected float64
	replSum, replCount          float64
	replBytes                   float64
	busyRetries, lockWait       float64 // SQLite: retries, seconds waited
}

// meter takes snapshots of one cluster.
type meter struct {
	c      *cluster.Cluster
	client *http.Client
	redis  *redis.Client
	pg     *pgx.Conn
	// sqlite: the replicas count their waits for SQLite's write lock.
	sqlite bool
}

// newMeter connects to the cluster's store for its counters. A store it
// cannot reach is left unmeasured rather than failing the sweep.
func newMeter(ctx context.Context, c *cluster.Cluster) *meter {
	m := &meter{c: c, client: &http.Client{Timeout: 2 * time.Second}}
	p := c.Processes()
	switch p.StoreKind {
	case stores.SQLite:
		m.sqlite = true
	case stores.Redis:
		if opt, err := redis.ParseURL(p.StoreURL); err == nil {
			m.redis = redis.NewClient(opt)
		}
	case stores.Postgres:
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if conn, err := pgx.Connect(cctx, p.StoreURL); err == nil {
			m.pg = conn
		}
		cancel()
	}
	return m
}

// close releases the store connections.
func (m *meter) close() {
	if m.redis != nil {
		m.redis.Close()
	}
	if m.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m.pg.Close(ctx)
		cancel()
	}
}

// snapshot reads every counter now.
func (m *meter) snapshot(ctx context.Context) snapshot {
	p := m.c.Processes()
	s := snapshot{at: time.Now(), cpu: map[string]float64{}, replicas: map[string]replicaCounters{}, storeCPU: -1}
	s.cpu[procBalancer] = processCPU(p.BalancerPID)
	s.cpu[procLab] = processCPU(os.Getpid())
	if p.StorePID > 0 {
		s.cpu[procStore] = processCPU(p.StorePID)
	}
	for _, r := range m.c.Replicas() {
		s.cpu[procReplicas] += processCPU(r.PID)
		if rc, err := m.scrape(ctx, r.URL); err == nil {
			s.replicas[r.ID] = rc
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch {
	case m.redis != nil:
		if info, err := m.redis.Info(ctx, "stats", "cpu").Result(); err == nil {
			kv := infoFields(info)
			s.storeOps = kv["total_commands_processed"]
			s.storeCPU = kv["used_cpu_sys"] + kv["used_cpu_user"]
		}
	case m.pg != nil:
		var commits int64
		if err := m.pg.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&commits); err == nil {
			s.storeOps = float64(commits)
		}
	}
	return s
}

// scrape reads one replica's capacity and replication counters.
func (m *meter) scrape(ctx context.Context, base string) (replicaCounters, error) {
	var rc replicaCounters
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return rc, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return rc, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rc, fmt.Errorf("lab: %s/metrics: %s", base, resp.Status)
	}
	fields := map[string]*float64{
		"statelab_app_capacity_busy_seconds_total":        &rc.busy,
		"statelab_app_capacity_held_total":                &rc.held,
		"statelab_app_capacity_slots":                     &rc.slots,
		"statelab_app_rejected_requests_total":            &rc.rejected,
		"statelab_replstore_replication_seconds_sum":      &rc.replSum,
		"statelab_replstore_replication_seconds_count":    &rc.replCount,
		"statelab_replstore_replicated_bytes_total":       &rc.replBytes,
		"statelab_sqlitestore_busy_retries_total":         &rc.busyRetries,
		"statelab_sqlitestore_busy_wait_seconds_total":    &rc.lockWait,
		"statelab_sqlitestore_writer_queue_seconds_total": &rc.lockWait,
	}
	return rc, promSum(io.LimitReader(resp.Body, 4<<20), fields)
}

// promSum adds up, for each metric name of fields, the values of every
// series of that name in a Prometheus text exposition.
func promSum(r io.Reader, fields map[string]*float64) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = line[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
		}
		dst, ok := fields[name]
		if !ok {
			continue
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			*dst += v
		}
	}
	return sc.Err()
}

// infoFields parses the numeric fields of a Redis INFO answer.
func infoFields(info string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	return out
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times; it
// is 100 on every Linux this runs on.
const clockTicks = 100

// processCPU returns the CPU seconds (user + system) process pid has used,
// or 0 when it cannot be read (pid 0, the process gone, not Linux).
func processCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields we need follow its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// resources turns two snapshots into what happened between them.
// machineCPU is the sampled machine CPU use (-1 when not sampled).
func resources(a, b snapshot, machineCPU float64) Resources {
	secs := b.at.Sub(a.at).Seconds()
	res := Resources{MachineCPU: round(machineCPU, 3), ProcessCPU: map[string]float64{}}
	if secs <= 0 {
		return res
	}
	for k, v := range b.cpu {
		res.ProcessCPU[k] = round(max(0, v-a.cpu[k])/secs, 3)
	}
	if a.storeCPU >= 0 && b.storeCPU >= 0 {
		res.ProcessCPU[procStore] = round(max(0, b.storeCPU-a.storeCPU)/secs, 3)
	}
	res.StoreOpsPerS = round(max(0, b.storeOps-a.storeOps)/secs, 1)
	var utilSum, busy, held, replSum, replCount, replBytes, retries, lockWait, heldMax float64
	n, m := 0, 0
	for id, rb := range b.replicas {
		ra, ok := a.replicas[id]
		if !ok {
			continue
		}
		busy += rb.busy - ra.busy
		held += rb.held - ra.held
		heldMax = max(heldMax, rb.held-ra.held)
		m++
		res.Rejected += int64(rb.rejected - ra.rejected)
		replSum += rb.replSum - ra.replSum
		replCount += rb.replCount - ra.replCount
		replBytes += rb.replBytes - ra.replBytes
		retries += rb.busyRetries - ra.busyRetries
		lockWait += rb.lockWait - ra.lockWait
		if rb.slots > 0 {
			u := (rb.busy - ra.busy) / (rb.slots * secs)
			utilSum += u
			res.SlotUtilMax = max(res.SlotUtilMax, round(u, 3))
			n++
		}
	}
	if n > 0 {
		res.SlotUtil = round(utilSum/float64(n), 3)
	}
	if held > 0 {
		res.SlotHoldMS = round(busy/held*1000, 2)
		res.RequestImbalance = round(heldMax/(held/float64(m)), 3)
		res.ReplicationWaitMS = round(replSum/held*1000, 3)
		res.StoreLockWaitMS = round(lockWait/held*1000, 3)
	}
	res.StoreBusyPerS = round(retries/secs, 1)
	res.ReplicationPerS = round(replCount/secs, 1)
	res.ReplicationBytesPerS = round(replBytes/secs, 0)
	if replCount > 0 {
		res.ReplicationMS = round(replSum/replCount*1000, 3)
	}
	return res
}
