package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/statelab/statelab/internal/netns"
)

// ErrNoHosts is wrapped by Start (Config.Hosts) when this process cannot
// give replicas network namespaces of their own, and returned by
// Partition and Isolate on a cluster started without Config.Hosts.
var ErrNoHosts = errors.New("cluster: replicas cannot run as hosts of their own")

// HostsAvailable returns nil when Config.Hosts can work here, otherwise an
// error wrapping ErrNoHosts that says why (not root, no ip command, no
// network namespaces).
func HostsAvailable() error {
	if err := netns.Available(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoHosts, err)
	}
	return nil
}

// hostsMu keeps to one the clusters with hosts of this process: the
// network is named after the process id (so that the next run finds what
// a killed one left behind).
var hostsMu sync.Mutex

// networkPrefix starts the name of a cluster's network: h and the process
// id in base 36.
const networkPrefix = "h"

// leftoverRE finds the networks of cluster processes in ip's output.
var leftoverRE = regexp.MustCompile(netns.Prefix + `-(` + networkPrefix + `[0-9a-z]{1,5})-`)

// startHosts creates the cluster's network, when Config.Hosts asks for
// one, after removing those of cluster processes that died without
// removing theirs.
func (c *Cluster) startHosts(ctx context.Context) error {
	if !c.cfg.Hosts {
		return nil
	}
	if c.cfg.Game != nil {
		return fmt.Errorf("%w: Hosts is for cart replicas, not game servers", ErrBadConfig)
	}
	if err := HostsAvailable(); err != nil {
		return err
	}
	if !hostsMu.TryLock() {
		return fmt.Errorf("%w: another cluster of this process already runs with hosts", ErrNoHosts)
	}
	removeLeftovers(ctx)
	subnet, err := freeSubnet(ctx)
	if err != nil {
		hostsMu.Unlock()
		return err
	}
	n, err := netns.New(ctx, networkPrefix+strconv.FormatInt(int64(os.Getpid()), 36), subnet)
	if err != nil {
		hostsMu.Unlock()
		return fmt.Errorf("cluster: hosts: %w", err)
	}
	c.net = n
	c.event(EventStarted, "", fmt.Sprintf("hosts: bridge at %s; each replica gets a network namespace of its own", n.Gateway()))
	return nil
}

// closeHosts removes the cluster's network (its processes must be gone).
func (c *Cluster) closeHosts() error {
	if c.net == nil {
		return nil
	}
	err := c.net.Close()
	c.net = nil
	hostsMu.Unlock()
	return err
}

// removeLeftovers removes the networks of cluster processes that no longer
// run. What cannot be removed is left for the next try.
func removeLeftovers(ctx context.Context) {
	ns, _ := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	links, _ := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	seen := map[string]bool{}
	for _, m := range leftoverRE.FindAllStringSubmatch(string(ns)+string(links), -1) {
		name := m[1]
		pid, err := strconv.ParseInt(name[len(networkPrefix):], 36, 64)
		if err != nil || seen[name] || int(pid) == os.Getpid() {
			continue
		}
		seen[name] = true
		if errors.Is(syscall.Kill(int(pid), 0), syscall.ESRCH) {
			_ = netns.Cleanup(ctx, name)
		}
	}
}

// freeSubnet picks a /24 of 10.215.0.0/16 that no interface of this
// machine is on.
func freeSubnet(ctx context.Context) (netip.Prefix, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("cluster: hosts: ip addr show: %w", err)
	}
	start := rand.IntN(250)
	for i := range 250 {
		n := 1 + (start+i)%250
		if !strings.Contains(string(out), fmt.Sprintf(" 10.215.%d.", n)) {
			return netip.MustParsePrefix(fmt.Sprintf("10.215.%d.0/24", n)), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("cluster: hosts: every subnet of 10.215.0.0/16 is in use")
}

// ip is the address replica r listens on: its host's, or loopback.
func (r *replica) ip() string {
	if r.host != nil {
		return r.host.Addr.String()
	}
	return "127.0.0.1"
}

// placeReplica gives a new replica its host, when the cluster has hosts.
func (c *Cluster) placeReplica(r *replica) error {
	if c.net == nil {
		return nil
	}
	h, err := c.net.AddHost(context.Background(), r.id)
	if err != nil {
		return fmt.Errorf("cluster: hosts: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.host = h
	if r.clusterAddr != "" {
		_, port, _ := net.SplitHostPort(r.clusterAddr)
		r.clusterAddr = net.JoinHostPort(h.Addr.String(), port)
	}
	return nil
}

// hostCommand is the command that runs bin with args as replica r: in its
// host's namespace, when it has one.
func (c *Cluster) hostCommand(r *replica, bin string, args []string) (string, []string) {
	if r.host == nil {
		return bin, args
	}
	return "ip", append([]string{"netns", "exec", r.host.Namespace, bin}, args...)
}

// newLinkProxy starts the proxy of the replicas' link to the store at
// target, where the replicas reach it: on loopback, or on the bridge.
func (c *Cluster) newLinkProxy(target string) (*faultProxy, error) {
	if c.net != nil {
		return newFaultProxyAt(c.net.Gateway().String(), target)
	}
	return newFaultProxy(target)
}

// Hosts reports whether the replicas run as hosts of their own.
func (c *Cluster) Hosts() bool { return c.net != nil }

// Partition cuts replica id off from every other replica (their links
// are blackholed both ways); the balancer and the store still reach it.
func (c *Cluster) Partition(ctx context.Context, id string) error {
	return c.peerLinks(ctx, id, true)
}

// HealPartition undoes Partition of replica id.
func (c *Cluster) HealPartition(ctx context.Context, id string) error {
	return c.peerLinks(ctx, id, false)
}

func (c *Cluster) peerLinks(ctx context.Context, id string, cut bool) error {
	r, _, done, err := c.replicaOp(id)
	if err != nil {
		return err
	}
	defer done()
	if c.net == nil || r.host == nil {
		return fmt.Errorf("%w: the cluster was started without hosts", ErrNoHosts)
	}
	c.mu.Lock()
	var others []*netns.Host
	for _, oid := range c.order {
		if o := c.replicas[oid]; o != r && o.host != nil {
			others = append(others, o.host)
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, o := range others {
		if cut {
			errs = append(errs, c.net.Cut(ctx, r.host, o))
		} else {
			errs = append(errs, c.net.Heal(ctx, r.host, o))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s cut off from its %d peers (the balancer and the store still reach it)", id, len(others))
	if !cut {
		msg = fmt.Sprintf("%s's links to its %d peers healed", id, len(others))
	}
	c.event(EventLink, id, msg)
	return nil
}

// Isolate cuts replica id off from the store: its store connections are
// reset and new ones refused, on the lab's link to the store, while the
// balancer and its peers still reach it.
func (c *Cluster) Isolate(ctx context.Context, id string) error {
	return c.storeLinkOf(ctx, id, true)
}

// HealIsolation undoes Isolate of replica id.
func (c *Cluster) HealIsolation(ctx context.Context, id string) error {
	return c.storeLinkOf(ctx, id, false)
}

func (c *Cluster) storeLinkOf(ctx context.Context, id string, cut bool) error {
	r, err := c.get(id)
	if err != nil {
		return err
	}
	if c.net == nil || r.host == nil {
		return fmt.Errorf("%w: the cluster was started without hosts", ErrNoHosts)
	}
	p, done, err := c.storeLink(ctx)
	if err != nil {
		return err
	}
	defer done()
	msg := id + "'s link to the store healed"
	if cut {
		n := p.block(r.host.Addr)
		msg = fmt.Sprintf("%s cut off from the store (%d connections reset, new ones refused); the balancer still reaches it", id, n)
	} else {
		p.unblock(r.host.Addr)
	}
	c.event(EventLink, id, msg)
	return nil
}

// block resets the connections of the client at addr and refuses its new
// ones; it returns how many it reset.
func (p *faultProxy) block(addr netip.Addr) int {
	p.mu.Lock()
	p.blocked[addr] = true
	var victims []net.Conn
	for c := range p.conns {
		if remoteIs(c, addr) {
			victims = append(victims, c)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return len(victims)
}

// unblock lets the client at addr connect again.
func (p *faultProxy) unblock(addr netip.Addr) {
	p.mu.Lock()
	delete(p.blocked, addr)
	p.mu.Unlock()
}

// isBlocked reports whether c comes from a blocked client.
func (p *faultProxy) isBlocked(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a := range p.blocked {
		if remoteIs(c, a) {
			return true
		}
	}
	return false
}

func remoteIs(c net.Conn, addr netip.Addr) bool {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	return err == nil && ap.Addr().Unmap() == addr
}
