package balancer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/statelab/statelab/balancer"
)

// Example runs a sticky balancer in front of two backends and shows a
// client with the balancer's cookie staying on one of them.
func Example() {
	var backends []balancer.BackendConfig
	for _, id := range []string{"r1", "r2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", id)
		}))
		defer srv.Close()
		backends = append(backends, balancer.BackendConfig{ID: id, URL: srv.URL})
	}
	lb, err := balancer.New(balancer.Config{
		Policy:   balancer.PolicySticky,
		Backends: backends,
		Secret:   []byte("shared by every balancer of the cluster"),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lb.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- lb.Serve(ctx, ln) }()
	defer func() { stop(); <-served }()

	var cookie *http.Cookie
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		if cs := resp.Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
		fmt.Println(resp.StatusCode, resp.Header.Get("X-Served-By"))
	}
	// Output:
	// 200 r1
	// 200 r1
	// 200 r1
}
