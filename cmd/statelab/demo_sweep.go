package main

import (
	"context"
	"fmt"

	"github.com/statelab/statelab/internal/lab"
)

// demoSweep runs demo's scaling sweep sc on the demo's run parameters
// base (binary, stores, work and capacity model; the sweep's own think
// time). It returns nil and no error when sc has no strategy left (none
// of --strategies is swept in --quick).
func demoSweep(ctx context.Context, m *Main, base lab.Config, sc lab.SweepConfig) (*lab.Sweep, error) {
	if len(sc.Strategies) == 0 {
		return nil, nil
	}
	sc.Base = base
	sc.Base.Think = lab.SweepThink(base.Work)
	sc.Base.Progress = progressTo(m)
	fmt.Fprintf(m.Stderr, "scaling sweep: %d strategies × replicas %v, probes of %v\n", len(sc.Strategies), sc.Replicas, sc.Probe)
	return lab.RunSweep(ctx, sc)
}
