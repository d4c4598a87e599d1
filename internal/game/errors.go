package game

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
const MaxBodyBytes = 16 << 10

// retryAfterSeconds is the Retry-After of every 503 the service sends.
const retryAfterSeconds = 1

// Errors of the room life cycle that callers branch on.
var (
	// ErrRoomMoved is returned for an input or a connection of a room this
	// replica stopped owning (membership change, shutdown).
	ErrRoomMoved = errors.New("game: room moved to another replica")
	// ErrLeaseLost is returned for an input that arrives while the owner
	// cannot prove it still holds the room's lease (the store did not
	// answer the renewals in time): it is neither applied nor acknowledged.
	ErrLeaseLost = errors.New("game: owner lease not renewed in time")
	// ErrBusy is returned when a room already has MaxPending inputs waiting
	// for the next tick.
	ErrBusy = errors.New("game: too many inputs waiting for the next tick")
)

// apiError is an error the API answers with: an HTTP status and a short
// machine-readable code besides the human-readable message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// ErrorBody is the JSON shape of every error response (and of a WebSocket
// error message's "error" field): {"error":{"code":"…","message":"…"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the machine-readable code and human-readable message of
// an error.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes e as a JSON error response; a 503 carries Retry-After.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	writeJSON(w, e.status, ErrorBody{ErrorDetail{e.code, e.message}})
}

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The only possible error is the client going away.
	_ = json.NewEncoder(w).Encode(v)
}

// classify maps an error of the game, the lease or the store to the API
// error to answer with; unknown errors are 500s (bugs, not bad input).
func classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrBadID):
		return &apiError{http.StatusBadRequest, "bad_id", err.Error()}
	case errors.Is(err, ErrBadMove):
		return &apiError{http.StatusBadRequest, "bad_move", err.Error()}
	case errors.Is(err, ErrSeqGap):
		return &apiError{http.StatusConflict, "seq_gap", err.Error()}
	case errors.Is(err, ErrRoomFull):
		return &apiError{http.StatusConflict, "room_full", err.Error()}
	case errors.Is(err, ErrBusy):
		return &apiError{http.StatusServiceUnavailable, "busy", err.Error()}
	case errors.Is(err, ErrRoomMoved), errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrFenced), errors.Is(err, ErrLeaseLost):
		return &apiError{http.StatusServiceUnavailable, "room_moving", err.Error() + "; retry shortly"}
	case errors.Is(err, session.ErrConflict):
		return &apiError{http.StatusServiceUnavailable, "conflict", "the room changed too often concurrently; try again"}
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &apiError{http.StatusServiceUnavailable, "store_unavailable", "the game store is unavailable; try again shortly"}
	case errors.Is(err, context.Canceled):
		return &apiError{http.StatusServiceUnavailable, "canceled", "request canceled"}
	default:
		return &apiError{http.StatusInternalServerError, "internal", "internal error"}
	}
}

// decodeBody decodes the request's JSON body into v: at most MaxBodyBytes,
// exactly one JSON value, no unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	switch mbe := new(http.MaxBytesError); {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, "body_too_large", "request body is over " + strconv.Itoa(MaxBodyBytes) + " bytes"}
	case errors.Is(err, io.EOF):
		return &apiError{http.StatusBadRequest, "bad_json", "request body is empty; expected a JSON object"}
	default:
		return &apiError{http.StatusBadRequest, "bad_json", "request body is not valid JSON for this endpoint: " + err.Error()}
	}
}
