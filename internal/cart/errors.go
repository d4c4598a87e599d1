package cart

import (
	"context"
	"errors"
	"net/http"

	"github.com/statelab/statelab/internal/catalog"
	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/replstore"
)

// MaxBodyBytes is the largest request body the API reads; a larger one is
// answered 413.
const MaxBodyBytes = httpapi.MaxBodyBytes

// apiError is an error the API answers with (the shared shape of the shop's
// services).
type apiError = httpapi.Error

// writeError writes e as a JSON error response (503s carry Retry-After).
func writeError(w http.ResponseWriter, e *apiError) { httpapi.WriteError(w, e) }

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

// decodeBody decodes the request's JSON body into v (see httpapi.DecodeBody).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	return httpapi.DecodeBody(w, r, v)
}

// classify turns an error from the cart domain, the request body or the
// session layer into the API error to answer with, and reports whether it
// was a store failure. Errors it does not know are 500s: they are bugs, not
// bad input.
func classify(err error) (e *apiError, storeFailure bool) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae, false
	case errors.Is(err, ErrUnknownSKU), errors.Is(err, catalog.ErrUnknownSKU):
		return &apiError{Status: http.StatusBadRequest, Code: "unknown_sku", Message: err.Error()}, false
	case errors.Is(err, ErrQtyRange):
		return &apiError{Status: http.StatusBadRequest, Code: "qty_out_of_range", Message: err.Error()}, false
	case errors.Is(err, ErrCartFull):
		return &apiError{Status: http.StatusBadRequest, Code: "cart_full", Message: err.Error()}, false
	case errors.Is(err, ErrEmptyCart):
		return &apiError{Status: http.StatusBadRequest, Code: "empty_cart", Message: err.Error()}, false
	case errors.Is(err, ErrNoLine):
		return &apiError{Status: http.StatusNotFound, Code: "no_such_line", Message: err.Error()}, false
	case errors.Is(err, session.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: "the cart changed too often concurrently; try again"}, false
	case errors.Is(err, session.ErrTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "cart_too_large", Message: "the cart no longer fits where the session is kept"}, false
	case errors.Is(err, httpapi.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "dependency_unavailable", Message: err.Error() + "; the cart is unchanged, try again shortly"}, false
	case errors.Is(err, replstore.ErrNoQuorum):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "no_quorum", Message: "the change could not reach enough copies of the cart (replicas down or cut off); the cart is unchanged, try again shortly"}, true
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Message: "the session store is unavailable; try again shortly"}, true
	case errors.Is(err, context.Canceled):
		// The client went away; whatever is written is never read.
		return &apiError{Status: http.StatusServiceUnavailable, Code: "canceled", Message: "request canceled"}, false
	default:
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
	}
}
