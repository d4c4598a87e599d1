package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/statelab/statelab/balancer"
	"github.com/statelab/statelab/internal/testenv"
)

var (
	lbServing  = regexp.MustCompile(`msg="statelab lb: serving".* listen=(\S+)`)
	lbRedirect = regexp.MustCompile(`msg="statelab lb: serving".* redirect_http=(\S+)`)
)

// writeCert writes cert and its key as PEM files and returns their paths.
func writeCert(t *testing.T, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestLBTLSTerminationSecureSessionCookie runs `statelab app` behind a
// `statelab lb` that terminates TLS: the app sees X-Forwarded-Proto: https
// and marks its session cookie Secure, and a TLS client sends it back, so
// the cart survives from one request to the next. The plain-HTTP redirect
// listener answers 308 to the https address.
func TestLBTLSTerminationSecureSessionCookie(t *testing.T) {
	bin := testenv.StatelabBinary(t)
	app := startProc(t, "app", bin, "app", "--listen", "127.0.0.1:0", "--id", "a1", "--store", "memory")
	appAddr := app.waitLog(t, appServing)[1]
	cert, err := balancer.SelfSignedCertificate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeCert(t, cert)
	lb := startProc(t, "lb", bin, "lb", "--listen", "127.0.0.1:0", "--admin", testenv.FreeAddr(t),
		"--tls-cert", certFile, "--tls-key", keyFile, "--redirect-http", "127.0.0.1:0", "--backend", "a1=http://"+appAddr)
	base := "https://" + lb.waitLog(t, lbServing)[1]
	redirect := "http://" + lb.waitLog(t, lbRedirect)[1]

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	jar, _ := cookiejar.New(nil)
	shopper := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := shopper.Post(base+"/api/cart/items", "application/json", strings.NewReader(`{"sku":"SKU-0011","qty":2}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	first := resp
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add over TLS: %d %s", resp.StatusCode, body)
	}
	if len(first.Cookies()) == 0 {
		t.Fatal("the app set no session cookie through the TLS balancer")
	}
	for _, c := range first.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure behind TLS termination", c.Name)
		}
	}
	resp, err = shopper.Post(base+"/api/cart/items", "application/json", strings.NewReader(`{"sku":"SKU-0022","qty":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	code, _, body := shopperRequest(shopper, "GET", base+"/api/cart", "")
	if code != http.StatusOK || !strings.Contains(string(body), "SKU-0011") || !strings.Contains(string(body), "SKU-0022") {
		t.Fatalf("cart over TLS: %d %s; want both items (the Secure cookie sent back)", code, body)
	}

	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = plain.Get(redirect + "/api/cart?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := base + "/api/cart?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("redirect listener: %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestLBSelfSignedSaysSo: --tls-self-signed serves TLS and says in the log
// that the certificate is self-signed.
func TestLBSelfSignedSaysSo(t *testing.T) {
	bin := testenv.StatelabBinary(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(be.Close)
	lb := startProc(t, "lb", bin, "lb", "--listen", "127.0.0.1:0", "--admin", testenv.FreeAddr(t), "--tls-self-signed", "--backend", be.URL)
	base := "https://" + lb.waitLog(t, lbServing)[1]
	if !strings.Contains(lb.log.String(), "self-signed") {
		t.Fatalf("log does not say the certificate is self-signed:\n%s", lb.log.String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	code, _, body := shopperRequest(client, "GET", base+"/", "")
	if code != 200 || string(body) != "https" {
		t.Fatalf("got %d %q, want 200 https", code, body)
	}
}

// TestLBSeveralInstancesOneAnswer runs two `statelab lb` processes with the
// same --secret and backends and alternates a client between them: the
// sticky cookie one set is honoured by the other, and the hash policy maps
// one key to one backend on both.
func TestLBSeveralInstancesOneAnswer(t *testing.T) {
	bin := testenv.StatelabBinary(t)
	var backends []string
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("r%d", i)
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", id)
		}))
		t.Cleanup(be.Close)
		backends = append(backends, "--backend", id+"="+be.URL)
	}
	for _, policy := range []string{"sticky", "hash"} {
		t.Run(policy, func(t *testing.T) {
			var lbs []string
			for i := 0; i < 2; i++ {
				args := append([]string{"lb", "--listen", "127.0.0.1:0", "--admin", testenv.FreeAddr(t), "--policy", policy,
					"--secret", "shared-secret-0123456789", "--hash-key", "header:X-Room"}, backends...)
				p := startProc(t, fmt.Sprintf("lb%d", i), bin, args...)
				lbs = append(lbs, "http://"+p.waitLog(t, lbServing)[1])
			}
			for client := 0; client < 8; client++ {
				checkOneAnswer(t, lbs, fmt.Sprintf("room-%d", client))
			}
		})
	}
}

// checkOneAnswer sends one client's requests alternately to each balancer
// and fails unless every answer comes from the same backend.
func checkOneAnswer(t *testing.T, lbs []string, room string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	first := ""
	for i := 0; i < 6; i++ {
		req, _ := http.NewRequest("GET", lbs[i%len(lbs)]+"/", nil)
		req.Header.Set("X-Room", room)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		by := resp.Header.Get("X-Served-By")
		if first == "" {
			first = by
		}
		if resp.StatusCode != 200 || by != first {
			t.Fatalf("client %s, request %d via lb%d: %d from %q; the first went to %q", room, i, i%len(lbs), resp.StatusCode, by, first)
		}
	}
}
