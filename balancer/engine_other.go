//go:build !linux

package balancer

import (
	"context"
	"net"

	"github.com/valyala/fasthttp"
)

// engineReason returns why the epoll engine cannot serve cfg's listener.
func engineReason(*Config) string { return "epoll exists on Linux only" }

// serveEpoll is never called off Linux (engineReason refuses).
func (lb *Balancer) serveEpoll(context.Context, net.Listener, *fasthttp.Server) error {
	panic("balancer: epoll engine on a system without epoll")
}
