package main

import (
	"context"
	"fmt"

	"github.com/statelab/statelab/internal/lab"
)

const compareUsage = `Usage: statelab compare A/results.json B/results.json

Compares the sweep sections of two results.json files (statelab lab --sweep):
per strategy and replica count, the limiter and the capacity of each, and the
share of points with the same limiter and with capacities within 10%.
`

// runCompare is statelab compare A/results.json B/results.json: two
// scaling sweeps side by side, per point the limiter and the capacity of
// each, and how many points agree.
func runCompare(_ context.Context, m *Main, args []string) error {
	files := args
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(m.Stderr, compareUsage)
			return errHelp
		}
	}
	if len(files) != 2 {
		return usageErrorf("compare", "want two results.json files of sweeps, got %d arguments", len(files))
	}
	a, err := lab.ReadSweep(files[0])
	if err != nil {
		return err
	}
	b, err := lab.ReadSweep(files[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "A: %s\nB: %s\n\n", files[0], files[1])
	return lab.WriteSweepComparison(m.Stdout, lab.CompareSweeps(a, b))
}
