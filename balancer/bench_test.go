package balancer

import (
	"io"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkProxy measures one proxied GET through the balancer's handler to
// a real loopback fasthttp backend (keep-alive pooled), including writing
// the response out. Run with -benchmem: allocs/op is the balancer's
// allocations per proxied request (the backend allocates nothing).
func BenchmarkProxy(b *testing.B) {
	for _, policy := range Policies {
		b.Run(policy, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			body := []byte("hello, world: a small response body of 64 bytes for the bench.")
			srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.Set("X-Served-By", "r1")
				ctx.SetBody(body)
			}}
			go srv.Serve(ln)
			b.Cleanup(func() { srv.Shutdown() })

			lb, err := New(Config{Policy: policy, Logger: nopLogger(), Backends: []BackendConfig{
				{ID: "r1", URL: "http://" + ln.Addr().String()},
				{ID: "r2", URL: "http://" + ln.Addr().String()},
			}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { lb.Close() })

			var ctx fasthttp.RequestCtx
			var req fasthttp.Request
			req.SetRequestURI("http://shop.example/api/cart")
			req.Header.Set("Cookie", "statelab_session=abc123")
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req.CopyTo(&ctx.Request)
				lb.handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
				if _, err := ctx.Response.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
				ctx.Response.Reset()
			}
		})
	}
}
