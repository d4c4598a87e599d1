package webguard

import "testing"

func TestLocalHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:9090", true},
		{"127.0.0.1", true},
		{"[::1]:9090", true},
		{"10.1.2.3:80", true},
		{"localhost:9090", true},
		{"LOCALHOST.", true},
		{"app.localhost:8080", true},
		{"evil.example:9090", false},
		{"evil:8080", false},
		{"localhost.evil.example", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := LocalHost(tt.host); got != tt.want {
			t.Errorf("LocalHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9090", true},
		{"127.0.0.2:9090", true},
		{"[::1]:9090", true},
		{"localhost:9090", true},
		{":9090", false},
		{"0.0.0.0:9090", false},
		{"10.0.0.1:9090", false},
		{"example.com:9090", false},
	}
	for _, tt := range tests {
		if got := LoopbackAddr(tt.addr); got != tt.want {
			t.Errorf("LoopbackAddr(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
