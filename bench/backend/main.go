// Command backend is the tiny HTTP backend of the load-balancer benchmark
// (bench/lb.sh): it answers every request with a short body and an
// X-Served-By header, as fast as it can, so that the proxy in front of it is
// what the benchmark measures.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to listen on")
	id := flag.String("id", "b1", "value of the X-Served-By header")
	size := flag.Int("size", 64, "response body size in bytes")
	flag.Parse()
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("X-Served-By", *id)
			ctx.SetContentType("text/plain")
			ctx.SetBody(body)
		},
		NoDefaultServerHeader: true,
	}
	if err := srv.ListenAndServe(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}
