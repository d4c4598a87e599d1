package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/statelab/statelab/internal/machine"
)

// process is one child process the cluster started. Its exit is observed by
// one goroutine; an exit the cluster did not ask for is a crash.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFrom int64         // the log's size when this process started: what it wrote comes after
	done    chan struct{} // closed when the process has exited

	mu       sync.Mutex
	expected bool  // the cluster asked it to stop
	ready    bool  // it answered once (markReady)
	exitErr  error // set before done is closed
}

// markReady notes that the process answered: from now on an exit because
// its address is taken is a crash like any other.
func (p *process) markReady() {
	p.mu.Lock()
	p.ready = true
	p.mu.Unlock()
}

// startProcess starts binary with args and env (KEY=VALUE entries added to
// the environment: secrets go there, never on the command line, which any
// local user can read in ps), its stdout and stderr appended to logPath.
// onExit runs once, after the process exits, with whether the exit was
// expected.
func startProcess(name, binary string, args, env []string, logPath string, onExit func(p *process, expected bool, err error)) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster: open log of %s: %w", name, err)
	}
	var logFrom int64
	if st, err := logf.Stat(); err == nil {
		logFrom = st.Size()
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(childEnv(), env...)
	// Own process group: a Ctrl-C on the terminal reaches the lab, which then
	// stops the children itself, instead of reaching every child at once
	// (they would look like crashes). Pdeathsig kills a child whose parent
	// died without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cluster: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFrom: logFrom, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.exitErr = err
		// A child that never answered because its port was taken before it
		// could bind it did not crash: its start failed (ports.go).
		expected := p.expected || (!p.ready && machine.AddrInUse(p.ownLog()))
		p.mu.Unlock()
		close(p.done)
		if onExit != nil {
			onExit(p, expected, err)
		}
	}()
	return p, nil
}

// childEnv is the environment of a child: the parent's, without the
// STATELAB_* variables, which would silently override the flags the cluster
// passes (every statelab flag reads STATELAB_<FLAG> as a default).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "STATELAB_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process, marking the exit it may cause as
// expected when expect is true.
func (p *process) signal(sig syscall.Signal, expect bool) error {
	if expect {
		p.mu.Lock()
		p.expected = true
		p.mu.Unlock()
	}
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cluster: signal %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// waitStopped waits up to limit until the kernel reports every thread of
// the process as stopped (state T in /proc/PID/task/*/stat): kill(2)
// returns before the threads have stopped, so a request sent right after
// SIGSTOP could still be answered. Where /proc cannot be read it returns at
// once.
func (p *process) waitStopped(limit time.Duration) {
	tasks := fmt.Sprintf("/proc/%d/task", p.pid())
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && !p.exited(); time.Sleep(time.Millisecond) {
		entries, err := os.ReadDir(tasks)
		if err != nil {
			return
		}
		stopped := true
		for _, e := range entries {
			if !threadStopped(tasks + "/" + e.Name() + "/stat") {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
	}
}

// threadStopped reports whether the stat file at path shows a stopped
// thread. The state is the field after the command name, which stands in
// parentheses and may itself hold spaces or parentheses. A thread that is
// gone counts as stopped.
func threadStopped(path string) bool {
	stat, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	return stat[i+2] == 'T' || stat[i+2] == 't'
}

// stop asks the process to exit with SIGTERM and waits up to grace before
// killing it. A stopped (SIGSTOP) process is continued first so it can see
// the SIGTERM.
func (p *process) stop(grace time.Duration) {
	_ = p.signal(syscall.SIGTERM, true)
	_ = p.signal(syscall.SIGCONT, true)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	p.kill()
}

// kill sends SIGKILL, marks the exit expected and waits for it.
func (p *process) kill() {
	_ = p.signal(syscall.SIGKILL, true)
	<-p.done
}

// ownLog returns what this process wrote to its log (the log file is
// shared by the processes a replica ran over time), up to its first 64 KiB.
func (p *process) ownLog() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 64<<10)
	n, _ := f.ReadAt(b, p.logFrom)
	return string(b[:n])
}

// tail returns the last n bytes of the process's log, for error messages.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(string(b))
}

// exitDescription says how the process ended, for events.
func exitDescription(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return err.Error()
}

// freePort returns a TCP port on 127.0.0.1 for a child to bind: free now,
// and drawn from outside the kernel's ephemeral range (machine.FreePort),
// so that the window before the child binds it is not one in which any
// outgoing connection can take it. A child that still finds it taken is
// started again on new ports where the cluster can (startListening).
func freePort() (int, error) { return machine.FreePort() }
