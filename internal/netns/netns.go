// Package netns builds a small network of Linux network namespaces on one
// machine, so that processes the lab starts can each run as their own
// "host", with their own address, and the links between them can be cut and
// healed.
//
// A Network is a bridge in the root namespace (with the first address of
// its /24 subnet, so processes in the root namespace, such as the balancer,
// reach every host) and one namespace per Host, joined to the bridge by a
// veth pair, with the host's address on its eth0 and a default route through
// the bridge. Cut makes two hosts (or a host and the root namespace)
// unreachable to each other with blackhole routes on both sides: a packet
// from one to the other is discarded, and its sender's send fails at once,
// as on a host that has no route, while every other link keeps working. Heal
// removes them.
//
// Everything the package creates is named after the Network's name with a
// fixed prefix, so Cleanup can find and remove what a killed run left
// behind. It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ip command
// (iproute2); Available says why it cannot run.
package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
)

// Prefix starts the name of every namespace, bridge and veth the package
// creates.
const Prefix = "stl"

// Errors returned by Available, New and the Network's methods.
var (
	// ErrUnsupported is wrapped when this process cannot build networks:
	// not root, not Linux, or no ip command.
	ErrUnsupported = errors.New("netns: network namespaces unavailable")
	// ErrBadName is wrapped for a Network or Host name outside [a-z0-9]{1,6}.
	ErrBadName = errors.New("netns: bad name")
	// ErrClosed is returned by the methods of a closed Network.
	ErrClosed = errors.New("netns: network closed")
)

var nameRE = regexp.MustCompile(`^[a-z0-9]{1,6}$`)

// Available returns nil when this process can build networks, otherwise an
// error wrapping ErrUnsupported that says why. The first call tries to
// create and remove a namespace (root in a container may lack the
// capability); later calls return its answer.
func Available() error {
	availableOnce.Do(func() { availableErr = probe() })
	return availableErr
}

var (
	availableOnce sync.Once
	availableErr  error
)

func probe() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (running as uid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (install iproute2): %v", ErrUnsupported, err)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("%w: no network namespaces on this system: %v", ErrUnsupported, err)
	}
	// "_" cannot occur in a network's name, so this never meets one.
	ns := fmt.Sprintf("%s-_probe-%d", Prefix, os.Getpid())
	ctx := context.Background()
	if err := ip(ctx, "", "netns", "add", ns); err != nil {
		return fmt.Errorf("%w: cannot create a network namespace: %v", ErrUnsupported, err)
	}
	if err := ip(ctx, "", "netns", "del", ns); err != nil {
		return fmt.Errorf("%w: cannot remove a network namespace: %v", ErrUnsupported, err)
	}
	return nil
}

// Network is a bridge and the hosts attached to it. Its methods are safe
// for concurrent use.
type Network struct {
	name   string
	bridge string
	gw     netip.Addr // the bridge's address
	subnet netip.Prefix

	mu     sync.Mutex
	hosts  []*Host
	closed bool
}

// Host is one network namespace on a Network.
type Host struct {
	// Name is the name given to AddHost.
	Name string
	// Namespace is the network namespace's name (ip netns).
	Namespace string
	// Addr is the host's address on the network.
	Addr netip.Addr

	veth string // the root-side end of its veth pair
}

// New removes what an earlier run under the same name left behind, then
// creates a Network named name ([a-z0-9]{1,6}) on subnet, a /24 such as
// 10.213.7.0/24: its bridge, with the subnet's first address, is up when
// New returns.
func New(ctx context.Context, name string, subnet netip.Prefix) (*Network, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: network %q (want [a-z0-9]{1,6})", ErrBadName, name)
	}
	if !subnet.Addr().Is4() || subnet.Bits() != 24 {
		return nil, fmt.Errorf("netns: subnet %v: want an IPv4 /24", subnet)
	}
	subnet = subnet.Masked()
	n := &Network{name: name, bridge: linkPrefix(name) + "br", gw: subnet.Addr().Next(), subnet: subnet}
	if err := Cleanup(ctx, name); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", prefixOf(n.gw, 24), "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, "", s...); err != nil {
			_ = n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Gateway returns the bridge's address: how hosts reach processes in the
// root namespace.
func (n *Network) Gateway() netip.Addr { return n.gw }

// AddHost creates a namespace named after name ([a-z0-9]{1,6}), joins it
// to the bridge with the next free address of the subnet, and brings its
// links up.
func (n *Network) AddHost(ctx context.Context, name string) (*Host, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: host %q (want [a-z0-9]{1,6})", ErrBadName, name)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	idx := len(n.hosts) + 1
	addr := n.gw
	for range idx {
		addr = addr.Next()
	}
	if !n.subnet.Contains(addr) || addr == lastAddr(n.subnet) {
		n.mu.Unlock()
		return nil, fmt.Errorf("netns: network %s is full", n.name)
	}
	h := &Host{Name: name, Namespace: linkPrefix(n.name) + name, Addr: addr, veth: fmt.Sprintf("%sv%d", linkPrefix(n.name), idx)}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()

	peer := h.veth + "p"
	steps := []struct {
		ns   string
		args []string
	}{
		{"", []string{"netns", "add", h.Namespace}},
		{"", []string{"link", "add", h.veth, "type", "veth", "peer", "name", peer}},
		{"", []string{"link", "set", peer, "netns", h.Namespace}},
		{"", []string{"link", "set", h.veth, "master", n.bridge}},
		{"", []string{"link", "set", h.veth, "up"}},
		{h.Namespace, []string{"link", "set", peer, "name", "eth0"}},
		{h.Namespace, []string{"addr", "add", prefixOf(addr, 24), "dev", "eth0"}},
		{h.Namespace, []string{"link", "set", "eth0", "up"}},
		{h.Namespace, []string{"link", "set", "lo", "up"}},
		{h.Namespace, []string{"route", "add", "default", "via", n.gw.String()}},
	}
	for _, s := range steps {
		if err := ip(ctx, s.ns, s.args...); err != nil {
			return nil, fmt.Errorf("netns: add host %s: %w", name, err)
		}
	}
	return h, nil
}

// Command returns a command that runs bin with args inside the host's
// namespace (through ip netns exec).
func (h *Host) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Namespace, bin}, args...)...)
}

// Cut makes a and b unreachable to each other; b nil means the root
// namespace (the bridge's address, where the balancer and the lab run).
// Cutting what is already cut is not an error.
func (n *Network) Cut(ctx context.Context, a, b *Host) error {
	return n.blackhole(ctx, "replace", a, b)
}

// Heal undoes Cut of a and b. Healing what is not cut is not an error.
func (n *Network) Heal(ctx context.Context, a, b *Host) error {
	err := n.blackhole(ctx, "del", a, b)
	if err != nil && strings.Contains(err.Error(), "No such process") {
		return nil
	}
	return err
}

func (n *Network) blackhole(ctx context.Context, verb string, a, b *Host) error {
	if a == nil {
		return fmt.Errorf("netns: cut: no host")
	}
	bAddr, bNS := n.gw, ""
	if b != nil {
		bAddr, bNS = b.Addr, b.Namespace
	}
	var errs []error
	for _, side := range []struct {
		ns string
		to netip.Addr
	}{{a.Namespace, bAddr}, {bNS, a.Addr}} {
		if err := ip(ctx, side.ns, "route", verb, "blackhole", prefixOf(side.to, 32)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close removes the hosts' namespaces (which removes their veths) and the
// bridge. Processes still running in a namespace keep it alive until they
// exit; stop them first.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	return Cleanup(context.Background(), n.name)
}

// Cleanup removes every namespace, veth and bridge of the network named
// name, as left by a run that was killed before it could close it. Nothing
// to remove is not an error.
func Cleanup(ctx context.Context, name string) error {
	if err := Available(); err != nil {
		return err
	}
	var errs []error
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("netns: ip netns list: %w", err)
	}
	nsPrefix := linkPrefix(name)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], nsPrefix) {
			if err := ip(ctx, "", "netns", "del", f[0]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	out, err = exec.CommandContext(ctx, "ip", "-j", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("netns: ip link show: %w", err)
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("netns: ip -j link show: %w", err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Name, linkPrefix(name)) {
			if err := ip(ctx, "", "link", "del", l.Name); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ip runs the ip command, in namespace ns when not empty.
func ip(ctx context.Context, ns string, args ...string) error {
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// linkPrefix starts the name of every namespace and link of the network
// named name: "stl-NAME-" (at most 11 bytes, leaving 4 of a link name's 15
// for "br" or "vNNp").
func linkPrefix(name string) string { return Prefix + "-" + name + "-" }

func prefixOf(a netip.Addr, bits int) string { return netip.PrefixFrom(a, bits).String() }

// lastAddr returns the broadcast address of a /24.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	b[3] = 255
	return netip.AddrFrom4(b)
}
