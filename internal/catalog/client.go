package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/statelab/statelab/internal/httpapi"
)

// Client is a Source that calls the catalog service over HTTP, with the
// timeouts, retries and client-side round robin of httpapi.Client. Every
// call it makes is a GET, so retrying is always safe.
type Client struct {
	c *httpapi.Client
}

// NewClient returns a Client for cfg (cfg.Service defaults to "catalog").
func NewClient(cfg httpapi.ClientConfig) (*Client, error) {
	if cfg.Service == "" {
		cfg.Service = "catalog"
	}
	c, err := httpapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Product implements Source: GET /api/catalog/{sku}.
func (c *Client) Product(ctx context.Context, sku string) (Product, error) {
	var p Product
	err := c.c.Call(ctx, http.MethodGet, "/api/catalog/"+url.PathEscape(sku), nil, &p)
	var ae *httpapi.Error
	if errors.As(err, &ae) && ae.Code == "unknown_sku" {
		return Product{}, fmt.Errorf("%w %q", ErrUnknownSKU, sku)
	}
	return p, err
}

// Page implements Source: GET /api/catalog?q=&offset=&limit=.
func (c *Client) Page(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	var p Page
	if err := c.c.Call(ctx, http.MethodGet, "/api/catalog?"+q.values().Encode(), nil, &p); err != nil {
		return Page{}, err
	}
	if p.Products == nil {
		p.Products = []Product{}
	}
	return p, nil
}
