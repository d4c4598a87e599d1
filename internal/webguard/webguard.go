// Package webguard holds the checks that keep a control endpoint — the
// balancer's admin API, the playground — from being driven by a web page
// the operator happens to have open. Two browser shapes matter:
//
//   - cross-site requests: a page of another site posts to the endpoint
//     (http.CrossOriginProtection refuses them by Sec-Fetch-Site and
//     Origin);
//   - DNS rebinding: the attacker's name first resolves to its own server,
//     then to 127.0.0.1, so the page becomes "same-origin" with the
//     endpoint. Only the Host header tells: it carries the attacker's name.
//     LocalHost accepts the names a browser uses to reach the machine
//     directly (IP literals and localhost), which no attacker can rebind.
package webguard

import (
	"net"
	"net/netip"
	"strings"
)

// LocalHost reports whether host, the value of a request's Host header with
// or without a port, is an IP literal, "localhost" or a name under
// ".localhost" (which browsers resolve to loopback themselves). A DNS name,
// which a rebinding attacker could point at this machine, is not.
func LocalHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	_, err := netip.ParseAddr(host)
	return err == nil
}

// LoopbackAddr reports whether a listen address (host:port) binds loopback
// interfaces only: 127.0.0.0/8, ::1 or localhost. An empty host (all
// interfaces) is not loopback.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return err == nil && ip.IsLoopback()
}
