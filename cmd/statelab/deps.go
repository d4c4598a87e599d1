package main

import (
	"flag"
	"time"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/internal/pricing"
)

// dependencyFlags say where statelab app finds the pricing and catalog
// services; without them it prices and lists products in process (the
// monolith).
type dependencyFlags struct {
	pricing  listFlag
	catalog  listFlag
	timeout  time.Duration
	attempts int
}

// register adds the dependency flags to fs.
func (d *dependencyFlags) register(fs *flag.FlagSet) {
	fs.Var(&d.pricing, "pricing", "pricing service `URLs` (a balancer's, or replicas' for client-side round robin; comma-separated); empty: price in process")
	fs.Var(&d.catalog, "catalog", "catalog service `URLs` (a balancer's, or replicas'; comma-separated); empty: the catalog in process")
	fs.DurationVar(&d.timeout, "dependency-timeout", time.Second, "deadline of one attempt of a pricing or catalog call")
	fs.IntVar(&d.attempts, "dependency-attempts", 3, "attempts of one pricing or catalog call (each on the next URL)")
}

// clients returns the clients the flags ask for; nil ones mean in process.
// A malformed URL or bound is a usage error.
func (d *dependencyFlags) clients() (catalog.Source, pricing.Pricer, error) {
	if d.timeout <= 0 {
		return nil, nil, usageErrorf("app", "--dependency-timeout must be positive")
	}
	if d.attempts < 1 {
		return nil, nil, usageErrorf("app", "--dependency-attempts must be at least 1")
	}
	var (
		products catalog.Source
		pricer   pricing.Pricer
	)
	if len(d.catalog) > 0 {
		c, err := catalog.NewClient(httpapi.ClientConfig{URLs: d.catalog, Timeout: d.timeout, Attempts: d.attempts})
		if err != nil {
			return nil, nil, usageErrorf("app", "invalid --catalog: %v", err)
		}
		products = c
	}
	if len(d.pricing) > 0 {
		c, err := pricing.NewClient(httpapi.ClientConfig{URLs: d.pricing, Timeout: d.timeout, Attempts: d.attempts})
		if err != nil {
			return nil, nil, usageErrorf("app", "invalid --pricing: %v", err)
		}
		pricer = c
	}
	return products, pricer, nil
}
