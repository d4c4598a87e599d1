package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errHelp is returned when the user asked for a command's usage text; it
// exits with status 0.
var errHelp = errors.New("help requested")

// usageError is a bad command line: it is printed as one line with a usage
// hint, and the process exits with status 2.
type usageError struct {
	command string
	msg     string
}

func (e *usageError) Error() string { return e.msg }

// usageErrorf returns a usageError for command, formatted like fmt.Sprintf.
func usageErrorf(command, format string, args ...any) error {
	return &usageError{command: command, msg: fmt.Sprintf("statelab %s: ", command) + fmt.Sprintf(format, args...)}
}

// newFlagSet returns a FlagSet for a subcommand whose -h prints usage (a
// short synopsis line) followed by the flag defaults to stderr.
func newFlagSet(m *Main, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: statelab %s %s\n\nFlags (each also read from STATELAB_<FLAG>):\n", name, synopsis)
		fs.SetOutput(m.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args into fs. Flags not given on the command line take
// their value from the environment variable STATELAB_<NAME> (upper case,
// dashes as underscores) when it is set; a repeatable flag reads a
// comma-separated list. Positional arguments are refused.
func parseFlags(fs *flag.FlagSet, args []string) error {
	// The flag package calls Usage on every parse error, but a bad flag must
	// print one line, not the whole usage text: silence it while parsing.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return errHelp
		}
		return usageErrorf(fs.Name(), "%v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	err = nil
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		values := []string{v}
		if _, repeatable := f.Value.(*listFlag); repeatable {
			values = splitList(v)
		}
		for _, v := range values {
			if serr := f.Value.Set(v); serr != nil {
				err = usageErrorf(fs.Name(), "invalid value %q for %s: %v", v, env, serr)
				return
			}
		}
	})
	return err
}

// envName is the environment variable that provides a default for flag name.
func envName(flagName string) string {
	return "STATELAB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable string flag; each use appends one or more
// comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// oneOf lists names for a usage text: "a, b or c".
func oneOf(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
