package balancer

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// tlsClient trusts cert (a self-signed certificate) and nothing else.
func tlsClient(t *testing.T, cert tls.Certificate) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		Timeout:   10 * time.Second,
	}
}

func TestTLSTerminationForwardsProtoHTTPS(t *testing.T) {
	be := newTestBackend(t, "r1", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "proto="+r.Header.Get("X-Forwarded-Proto")+" tls="+boolString(r.TLS != nil))
	})
	cert, err := SelfSignedCertificate(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, base := startLB(t, Config{Backends: []BackendConfig{be.config()}, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	httpsURL := strings.Replace(base, "http://", "https://", 1)
	resp, err := tlsClient(t, cert).Get(httpsURL + "/x")
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "proto=https tls=false" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "" && resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("over TLS: %d %q (tls %v); want 200 and X-Forwarded-Proto https to a plain backend", resp.StatusCode, body, resp.TLS != nil)
	}
	// Plain HTTP on the TLS port is refused, never proxied.
	if resp, err := http.Get(base + "/x"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP on the TLS listener got %d", resp.StatusCode)
		}
	}
	if n := be.hits.Load(); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestNewRefusesTLSWithoutCertificate(t *testing.T) {
	if _, err := New(Config{TLS: &tls.Config{}}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("New with an empty TLS config: %v, want ErrInvalidConfig naming the certificate", err)
	}
}

func TestRedirectHandler(t *testing.T) {
	tests := []struct {
		name, host, target string
		port               int
		wantCode           int
		wantLoc            string
	}{
		{"port kept", "example.com:8080", "/cart?x=1", 8443, 308, "https://example.com:8443/cart?x=1"},
		{"443 omitted", "example.com", "/", 443, 308, "https://example.com/"},
		{"ipv6", "[::1]:80", "/a", 8443, 308, "https://[::1]:8443/a"},
		{"bad host", "evil.com/x@", "/", 443, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.target, nil)
			req.Host = tt.host
			rec := httptest.NewRecorder()
			RedirectHandler(tt.port).ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || rec.Header().Get("Location") != tt.wantLoc {
				t.Fatalf("got %d Location %q, want %d %q", rec.Code, rec.Header().Get("Location"), tt.wantCode, tt.wantLoc)
			}
		})
	}
}

func TestSelfSignedCertificateNames(t *testing.T) {
	cert, err := SelfSignedCertificate(time.Hour, "lb.test", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.Leaf.VerifyHostname("lb.test"); err != nil {
		t.Error(err)
	}
	if err := cert.Leaf.VerifyHostname("10.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := cert.Leaf.VerifyHostname("other.test"); err == nil {
		t.Error("certificate valid for a name it was not made for")
	}
}
