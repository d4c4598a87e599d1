// Package httpapi is the HTTP plumbing the shop's three services (cart,
// pricing, catalog) share, so that they answer alike: JSON errors of one
// shape ({"error":{"code","message"}}, 503 with Retry-After), bounded JSON
// request bodies, per-method dispatch with JSON 405s, the capacity model
// (Limiter), and for the stateless services a Service skeleton with
// X-Served-By, /healthz, /readyz, /metrics and per-route metrics. Its
// Client is how one service calls another: timeouts, retries of idempotent
// calls on the next replica, and ErrUnavailable when every replica failed.
package httpapi
