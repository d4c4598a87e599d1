// Command statelab runs the statelab cart service, load balancer, lab and
// playground. It is a thin dispatcher: each subcommand lives in its own file
// with its own flag.FlagSet, and the engines live in packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(NewMain(os.Stdout, os.Stderr).Run(ctx, os.Args[1:]))
}

// Main holds the process-wide wiring shared by every subcommand.
type Main struct {
	// Stdout receives a command's normal output (tables, versions).
	Stdout io.Writer
	// Stderr receives logs, progress and error messages.
	Stderr io.Writer
}

// NewMain returns a Main writing to the given streams.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{Stdout: stdout, Stderr: stderr}
}

// command is one subcommand of statelab.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, m *Main, args []string) error
}

// commands lists the subcommands in the order the usage text shows them.
var commands = []command{
	{"demo", "run every strategy through the standard scenarios and report", runDemo},
	{"lab", "run one strategy through one scenario", runLab},
	{"compare", "compare two scaling sweeps' results.json: limiter and capacity per point", runCompare},
	{"lb", "run the HTTP load balancer", runLB},
	{"app", "run one replica of the shopping-cart service", runApp},
	{"game", "run one replica of the real-time game server", runGame},
	{"pricing", "run one replica of the stateless pricing service", runPricing},
	{"catalog", "run one replica of the stateless catalog service", runCatalog},
	{"play", "serve the live playground in a browser", runPlay},
	{"healthcheck", "probe a URL, exit 0 on 2xx (for container health checks)", runHealthcheck},
	{"version", "print the version", runVersion},
}

// Run executes the subcommand named by args[0] and returns the process exit
// status: 0 on success, 2 for bad usage, 1 for any other failure.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		m.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return m.exitCode(c.run(ctx, m, args[1:]))
		}
	}
	fmt.Fprintf(m.Stderr, "statelab: unknown command %q\nRun 'statelab help' for usage.\n", args[0])
	return 2
}

func (m *Main) exitCode(err error) int {
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(m.Stderr, "%s\nRun 'statelab %s -h' for usage.\n", uerr.msg, uerr.command)
		return 2
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(m.Stderr, "statelab: interrupted")
		return 130
	default:
		fmt.Fprintf(m.Stderr, "statelab: %v\n", err)
		return 1
	}
}

func (m *Main) usage() {
	fmt.Fprintln(m.Stderr, "statelab: stateful vs stateless, measured.\n\nUsage:\n  statelab <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(m.Stderr, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(m.Stderr, "\nEvery flag --name can also be set with the environment variable STATELAB_NAME\n(dashes become underscores), e.g. STATELAB_REDIS=redis://127.0.0.1:6379.\nRun 'statelab <command> -h' for a command's flags.")
}
