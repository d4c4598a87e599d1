package cart

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/statelab/statelab/session"
)

// MaxBodyBytes is the largest request body the API reads; a larger one is
// answered 413.
const MaxBodyBytes = 64 << 10

// retryAfterSeconds is the Retry-After of every 503 the service sends.
const retryAfterSeconds = 1

// apiError is an error the API answers with: an HTTP status and a short
// machine-readable code besides the human-readable message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// errorBody is the JSON shape of every error response:
// {"error":{"code":"…","message":"…"}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes e as a JSON error response. A 503 carries Retry-After
// and a 405 is expected to have its Allow header set by the caller.
func writeError(w http.ResponseWriter, e *apiError) {
	var body errorBody
	body.Error.Code, body.Error.Message = e.code, e.message
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	writeJSON(w, e.status, body)
}

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The only possible error is the client going away; there is no one
	// left to tell.
	_ = json.NewEncoder(w).Encode(v)
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
	case errors.Is(err, ErrUnknownSKU):
		return &apiError{http.StatusBadRequest, "unknown_sku", err.Error()}, false
	case errors.Is(err, ErrQtyRange):
		return &apiError{http.StatusBadRequest, "qty_out_of_range", err.Error()}, false
	case errors.Is(err, ErrCartFull):
		return &apiError{http.StatusBadRequest, "cart_full", err.Error()}, false
	case errors.Is(err, ErrEmptyCart):
		return &apiError{http.StatusBadRequest, "empty_cart", err.Error()}, false
	case errors.Is(err, ErrNoLine):
		return &apiError{http.StatusNotFound, "no_such_line", err.Error()}, false
	case errors.Is(err, session.ErrConflict):
		return &apiError{http.StatusConflict, "conflict", "the cart changed too often concurrently; try again"}, false
	case errors.Is(err, session.ErrTooLarge):
		return &apiError{http.StatusRequestEntityTooLarge, "cart_too_large", "the cart no longer fits where the session is kept"}, false
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &apiError{http.StatusServiceUnavailable, "store_unavailable", "the session store is unavailable; try again shortly"}, true
	case errors.Is(err, context.Canceled):
		// The client went away; whatever is written is never read.
		return &apiError{http.StatusServiceUnavailable, "canceled", "request canceled"}, false
	default:
		return &apiError{http.StatusInternalServerError, "internal", "internal error"}, false
	}
}

// decodeBody decodes the request's JSON body into v: at most MaxBodyBytes
// (413 beyond), exactly one JSON value, no unknown fields (400 otherwise).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON value")
			if mbe := new(http.MaxBytesError); errors.As(terr, &mbe) {
				err = terr
			}
		}
	}
	if err == nil {
		return nil
	}
	if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, "body_too_large", "request body is over " + strconv.Itoa(MaxBodyBytes) + " bytes"}
	}
	if errors.Is(err, io.EOF) {
		return &apiError{http.StatusBadRequest, "bad_json", "request body is empty; expected a JSON object"}
	}
	return &apiError{http.StatusBadRequest, "bad_json", "request body is not valid JSON for this endpoint: " + err.Error()}
}
