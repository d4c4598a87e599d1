package lab

import (
	"fmt"
	"time"

	"github.com/statelab/statelab/internal/strategy"
)

// Limiter names what stopped a sweep point's capacity from growing, as
// measured at its saturating probe (see classifyLimiter).
type Limiter string

// The limiters.
const (
	// LimitReplicas: the replicas' capacity model (--work, --max-inflight)
	// was full — every slot busy with requests that took about --work.
	LimitReplicas Limiter = "replicas"
	// LimitHotReplica: one replica's slots were full while the others had
	// room — the balancer's placement (sticky sessions, a hot session)
	// concentrated the load.
	LimitHotReplica Limiter = "hot_replica"
	// LimitCPU: this machine's CPU was saturated; the point measures the
	// machine, not the model.
	LimitCPU Limiter = "cpu"
	// LimitStore: the session store — its process busy, or the requests
	// holding their slots much longer than --work while waiting on it.
	LimitStore Limiter = "store"
	// LimitReplication: requests held their slots much longer than --work
	// while copying writes to peer replicas.
	LimitReplication Limiter = "replication"
	// LimitBalancer: the balancer's process was busy.
	LimitBalancer Limiter = "balancer"
	// LimitNone: nothing measured was saturated (the objective failed on
	// latency alone); read the probe's numbers.
	LimitNone Limiter = "none"
)

// Thresholds of classifyLimiter.
const (
	// limitSlotFull: the capacity model is full when requests held at
	// least 80% of the slot-time of the probe (queueing theory says the
	// tail grows steeply from about there).
	limitSlotFull = 0.80
	// limitHoldExcess: a request that held its slot 1.5× --work or longer
	// waited on something besides the model (the store, replication, the
	// CPU); below that the model's timer is what held it.
	limitHoldExcess = 1.5
	// limitHotSpread: one replica is hot when its slot use and its
	// requests are both at least 1.10× the mean's; closer than that, the
	// replicas filled together. Uneven slot use with even requests is a
	// replica held back by the machine, not placement.
	limitHotSpread = 1.10
	// limitProcCores: a store or balancer process using 0.8 of a core is
	// busy (Redis and the balancer's event loop are mostly one thread).
	limitProcCores = 0.80
	// limitWaitShare: slots held long are the store's or replication's
	// doing when the time measured waiting on it per request is at least
	// half of the hold beyond --work; less, and something else (the CPU,
	// the handler) took most of the excess.
	limitWaitShare = 0.5
)

// classifyLimiter names the limiter from what was measured during the
// saturating probe, and says why in one sentence. In order: full slots
// holding for about --work are the model (even if the CPU was busy too);
// one full replica among idle ones is placement; full slots held long
// while replication, or waiting for SQLite's write lock, measurably took
// most of the excess are replication or the store; then a saturated
// machine; then a busy store or balancer process; then full slots held
// long under an external store whose waits are not counted (Redis,
// PostgreSQL).
func classifyLimiter(st strategy.Strategy, work time.Duration, res Resources) (Limiter, string) {
	hold := fmt.Sprintf("requests held a slot %.1f ms (--work %v)", res.SlotHoldMS, work)
	if res.ReplicationPerS > 0 {
		hold += fmt.Sprintf(", %.2f ms of it copying to backups (%.0f copies/s, %s/s)", res.ReplicationWaitMS, res.ReplicationPerS, byteSize(res.ReplicationBytesPerS))
	}
	if res.StoreLockCounted {
		hold += fmt.Sprintf(", %.2f ms of it waiting for SQLite's write lock (%.0f busy retries/s)", res.StoreLockWaitMS, res.StoreBusyPerS)
	}
	workMS := float64(work) / float64(time.Millisecond)
	modelHold := work <= 0 || res.SlotHoldMS < limitHoldExcess*workMS
	full := max(res.SlotUtil, res.SlotUtilMax) >= limitSlotFull
	// waited says whether a measured wait per request explains most of
	// the slot time beyond --work.
	waited := func(ms float64) bool {
		return full && !modelHold && ms > 0 && ms >= limitWaitShare*(res.SlotHoldMS-workMS)
	}
	switch {
	case res.SlotUtil >= limitSlotFull && modelHold:
		return LimitReplicas, fmt.Sprintf("replica slots %s busy on average; %s", pct(res.SlotUtil), hold)
	case res.SlotUtilMax >= limitSlotFull && modelHold && res.SlotUtilMax >= limitHotSpread*res.SlotUtil && res.RequestImbalance >= limitHotSpread:
		return LimitHotReplica, fmt.Sprintf("the busiest replica's slots were %s busy, the mean %s; it got %.2f× the mean requests", pct(res.SlotUtilMax), pct(res.SlotUtil), res.RequestImbalance)
	case waited(res.ReplicationWaitMS):
		return LimitReplication, hold
	case res.StoreLockCounted && waited(res.StoreLockWaitMS):
		return LimitStore, hold
	case res.MachineCPU >= saturatedBusy:
		return LimitCPU, fmt.Sprintf("the machine's CPU was %s busy (%s); %s", pct(res.MachineCPU), res.cpuText(), hold)
	case res.ProcessCPU[procStore] >= limitProcCores:
		return LimitStore, fmt.Sprintf("the store's process used %.2f cores at %.0f ops/s", res.ProcessCPU[procStore], res.StoreOpsPerS)
	case res.ProcessCPU[procBalancer] >= limitProcCores:
		return LimitBalancer, fmt.Sprintf("the balancer used %.2f cores", res.ProcessCPU[procBalancer])
	case full && !modelHold && st.Spec().External() && !res.StoreLockCounted:
		return LimitStore, fmt.Sprintf("%s waiting on the store (%.0f ops/s)", hold, res.StoreOpsPerS)
	case full:
		return LimitReplicas, fmt.Sprintf("replica slots %s busy on average, %s on the busiest; %s", pct(res.SlotUtil), pct(res.SlotUtilMax), hold)
	}
	return LimitNone, fmt.Sprintf("nothing measured was saturated: slots %s busy, machine CPU %s", pct(res.SlotUtil), pct(max(0, res.MachineCPU)))
}

// byteSize words a byte count: B, kB or MB (powers of 1000).
func byteSize(b float64) string {
	switch {
	case b >= 1e6:
		return fmt.Sprintf("%.1f MB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1f kB", b/1e3)
	}
	return fmt.Sprintf("%.0f B", b)
}

// cpuText says how many cores the sweep's own processes used, by process.
func (res Resources) cpuText() string {
	var own float64
	for _, v := range res.ProcessCPU {
		own += v
	}
	return fmt.Sprintf("the lab's processes used %.2f cores: balancer %.2f, replicas %.2f, store %.2f, load generator %.2f",
		own, res.ProcessCPU[procBalancer], res.ProcessCPU[procReplicas], res.ProcessCPU[procStore], res.ProcessCPU[procLab])
}
