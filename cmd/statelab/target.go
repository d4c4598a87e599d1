package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/statelab/statelab/internal/lab"
)

// targetFlags point lab and demo at a deployment the lab did not start.
type targetFlags struct {
	url, admin string
	cmds       map[lab.Action]*string
}

// register adds --target, --target-admin and one --ACTION-cmd per action
// to fs.
func (f *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "target", "", "drive the deployment whose balancer is at `URL` instead of starting a cluster (must be given on the command line)")
	fs.StringVar(&f.admin, "target-admin", "", "the target balancer's admin API `URL`, to list its backends (token from STATELAB_ADMIN_TOKEN)")
	f.cmds = map[lab.Action]*string{}
	for _, a := range lab.TargetActions() {
		f.cmds[a] = fs.String(strings.TrimPrefix(a.Flag(), "--"), "", "with --target: shell `CMD` that does "+targetActionText[a]+"; {id} is the replica id")
	}
}

// targetActionText says what each action's command must do.
var targetActionText = map[lab.Action]string{
	lab.ActKill:       "a replica's abrupt death (SIGKILL, pod deleted with no grace)",
	lab.ActPause:      "freezing a replica",
	lab.ActResume:     "continuing a frozen replica",
	lab.ActAdd:        "adding a replica to the balancer ({id} is a new name)",
	lab.ActStoreStop:  "stopping the store",
	lab.ActStoreStart: "starting the store again",
}

// target returns the Target the flags name, or the zero Target. The target
// must be named on the command line: an environment variable left over
// from another shell must not point the lab at someone's deployment.
func (f *targetFlags) target(fs *flag.FlagSet) (lab.Target, error) {
	explicit := false
	fs.Visit(func(fl *flag.Flag) { explicit = explicit || fl.Name == "target" })
	t := lab.Target{URL: strings.TrimSuffix(f.url, "/"), AdminURL: strings.TrimSuffix(f.admin, "/"), Commands: map[lab.Action]string{}}
	for a, c := range f.cmds {
		if *c != "" {
			t.Commands[a] = *c
		}
	}
	switch {
	case t.URL != "" && !explicit:
		return t, usageErrorf(fs.Name(), "--target must be given on the command line, not through %s", envName("target"))
	case t.URL == "" && (t.AdminURL != "" || len(t.Commands) > 0):
		return t, usageErrorf(fs.Name(), "--target-admin and the --*-cmd flags need --target")
	}
	if t.AdminURL != "" {
		t.AdminToken = strings.TrimSpace(os.Getenv("STATELAB_ADMIN_TOKEN"))
	}
	return t, nil
}

// announceTarget tells, before anything is sent, what the lab is about to
// do to the target.
func announceTarget(w io.Writer, cfg lab.Config, runs int) {
	t := cfg.Target
	fmt.Fprintf(w, "Target %s: the lab did not start it and starts nothing. %d run(s), up to %.0f requests/s for %v each (caps: %d requests/s, %v).\n",
		t.URL, runs, cfg.Rate, cfg.Duration, lab.TargetMaxRate, lab.TargetMaxDuration)
	for _, a := range lab.TargetActions() {
		if c := t.Commands[a]; c != "" {
			fmt.Fprintf(w, "  %s: %s\n", a.Flag(), c)
		}
	}
	if len(t.Commands) == 0 {
		fmt.Fprintln(w, "  no fault commands: only the scenarios without faults will run")
	}
}

// targetParams describes a run against a target for the report.
func targetParams(cfg lab.Config) string {
	return fmt.Sprintf("Against the target %s, which the lab did not start: its replicas, balancer and store are its own. Every run: %.0f requests/s offered for %v, %v between a shopper's steps, %v request timeout, %d tabs in the tabs scenario.",
		cfg.Target.URL, cfg.Rate, cfg.Duration, cfg.Think, cfg.Timeout, cfg.Tabs)
}
