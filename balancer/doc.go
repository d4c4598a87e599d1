// Package balancer is statelab's HTTP/1.1 load balancer: a reverse proxy with
// pluggable backend selection (round robin, least request, sticky cookie,
// consistent hash with bounded loads), active and passive health checking,
// retries, a runtime admin API and Prometheus metrics.
//
// The package owns everything between the client connection and the backend
// connection: choosing a backend, forwarding the request (hop-by-hop headers,
// X-Forwarded-*, streaming bodies, WebSocket/Upgrade pass-through), deciding
// whether a failed attempt may be retried elsewhere, and tracking backend
// health. It does not own the backends themselves (it never starts or stops
// them), TLS termination, HTTP/2 or path-based routing.
//
// A Balancer is built from a Config with New, serves the proxy on a listener
// with Serve, and exposes its admin API and metrics with AdminHandler:
//
//	lb, err := balancer.New(balancer.Config{
//		Policy:   balancer.PolicySticky,
//		Backends: []balancer.BackendConfig{{ID: "r1", URL: "http://127.0.0.1:9001"}},
//	})
//	if err != nil { ... }
//	defer lb.Close()
//	go http.Serve(adminLn, lb.AdminHandler())
//	err = lb.Serve(ctx, ln) // returns after ctx is done and in-flight requests finished
//
// The proxy is built on github.com/valyala/fasthttp, chosen on measurements
// (see docs/benchmarks.md): a net/http ReverseProxy reached about a third
// of HAProxy's throughput on the reference machine. Because of that the proxy
// is not an http.Handler; use Serve with a net.Listener.
package balancer
