// Command backend is the tiny HTTP backend of the load-balancer benchmark
// (bench/lb.sh): it answers every request with a short body and an
// X-Served-By header, as fast as it can, so that the proxy in front of it is
// what the benchmark measures. A size query parameter (/?size=4096, at most
// 1 MiB) asks for a body of that many bytes instead of -size.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/valyala/fasthttp"
)

// maxSize is the largest body ?size= may ask for.
const maxSize = 1 << 20

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to listen on")
	id := flag.String("id", "b1", "value of the X-Served-By header")
	size := flag.Int("size", 64, "default response body size in bytes")
	flag.Parse()
	if *size < 0 || *size > maxSize {
		fmt.Fprintf(os.Stderr, "backend: -size %d: want 0 to %d\n", *size, maxSize)
		os.Exit(2)
	}
	body := make([]byte, maxSize)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			n := *size
			if v, err := ctx.QueryArgs().GetUint("size"); err == nil {
				n = min(v, maxSize)
			}
			ctx.Response.Header.Set("X-Served-By", *id)
			ctx.SetContentType("text/plain")
			ctx.SetBody(body[:n])
		},
		NoDefaultServerHeader: true,
	}
	if err := srv.ListenAndServe(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}
