package main

import (
	"crypto/tls"
	"flag"
	"log/slog"
	"time"

	"github.com/statelab/statelab/balancer"
)

// tlsFlags are statelab lb's flags for TLS termination.
type tlsFlags struct {
	cert, key, redirect string
	selfSigned          bool
}

// register adds the TLS flags to fs.
func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "PEM certificate (chain) `FILE`: terminate TLS on --listen (with --tls-key)")
	fs.StringVar(&f.key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.BoolVar(&f.selfSigned, "tls-self-signed", false, "terminate TLS with a fresh in-memory self-signed certificate for localhost (local tries only)")
	fs.StringVar(&f.redirect, "redirect-http", "", "also listen on plain-HTTP `ADDR` and redirect every request there to https (308); needs TLS")
}

// apply sets cfg.TLS from the flags, or returns a usage error naming the
// bad flag.
func (f *tlsFlags) apply(cfg *balancer.Config, log *slog.Logger) error {
	switch {
	case f.selfSigned && (f.cert != "" || f.key != ""):
		return usageErrorf("lb", "--tls-self-signed excludes --tls-cert and --tls-key")
	case (f.cert == "") != (f.key == ""):
		return usageErrorf("lb", "--tls-cert and --tls-key go together")
	case f.redirect != "" && !f.selfSigned && f.cert == "":
		return usageErrorf("lb", "--redirect-http needs TLS on --listen (--tls-cert/--tls-key or --tls-self-signed)")
	}
	var cert tls.Certificate
	var err error
	switch {
	case f.selfSigned:
		cert, err = balancer.SelfSignedCertificate(7 * 24 * time.Hour)
		if err != nil {
			return usageErrorf("lb", "--tls-self-signed: %v", err)
		}
		log.Warn("statelab lb: serving TLS with a self-signed certificate for localhost, 127.0.0.1 and ::1; clients will not trust it (curl -k); use --tls-cert/--tls-key for anything but a local try")
	case f.cert != "":
		cert, err = tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return usageErrorf("lb", "invalid --tls-cert/--tls-key: %v", err)
		}
	default:
		return nil
	}
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	return nil
}
