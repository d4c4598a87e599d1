package game

import (
	"context"
	"errors"
	"net/http"

	"github.com/statelab/statelab/internal/httpapi"
	"github.com/statelab/statelab/session"
)

// Errors of the room life cycle that callers branch on.
var (
	// ErrRoomMoved is returned for an input or a connection of a room this
	// replica stopped owning (membership change, shutdown).
	ErrRoomMoved = errors.New("game: room moved to another replica")
	// ErrLeaseLost is returned for an input that arrives while the owner
	// cannot prove it still holds the room's lease (the store did not
	// answer the renewals in time): it is neither applied nor acknowledged.
	ErrLeaseLost = errors.New("game: owner lease not renewed in time")
	// ErrNotJoined is returned for a room request while the replica has
	// not joined its cluster yet.
	ErrNotJoined = errors.New("game: replica has not joined its cluster yet")
	// ErrBusy is returned when a room already has MaxPending inputs waiting
	// for the next tick.
	ErrBusy = errors.New("game: too many inputs waiting for the next tick")
)

// ErrorDetail is the machine-readable code and human-readable message of
// an error, as a WebSocket error message carries it (the same fields as
// the "error" object of an HTTP error response).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiErr is shorthand for an httpapi.Error.
func apiErr(status int, code, message string) *httpapi.Error {
	return &httpapi.Error{Status: status, Code: code, Message: message}
}

// classify maps an error of the game, the lease or the store to the API
// error to answer with; unknown errors are 500s (bugs, not bad input).
func classify(err error) *httpapi.Error {
	var ae *httpapi.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrBadID):
		return apiErr(http.StatusBadRequest, "bad_id", err.Error())
	case errors.Is(err, ErrBadMove):
		return apiErr(http.StatusBadRequest, "bad_move", err.Error())
	case errors.Is(err, ErrSeqGap):
		return apiErr(http.StatusConflict, "seq_gap", err.Error())
	case errors.Is(err, ErrRoomFull):
		return apiErr(http.StatusConflict, "room_full", err.Error())
	case errors.Is(err, ErrNotJoined):
		return apiErr(http.StatusServiceUnavailable, "not_joined", err.Error())
	case errors.Is(err, ErrBusy):
		return apiErr(http.StatusServiceUnavailable, "busy", err.Error())
	case errors.Is(err, ErrRoomMoved), errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrFenced), errors.Is(err, ErrLeaseLost):
		return apiErr(http.StatusServiceUnavailable, "room_moving", err.Error()+"; retry shortly")
	case errors.Is(err, ErrNotReplicated):
		return apiErr(http.StatusServiceUnavailable, "not_replicated", err.Error()+"; retry shortly")
	case errors.Is(err, session.ErrConflict):
		return apiErr(http.StatusServiceUnavailable, "conflict", "the room changed too often concurrently; try again")
	case errors.Is(err, session.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return apiErr(http.StatusServiceUnavailable, "store_unavailable", "the game store is unavailable; try again shortly")
	case errors.Is(err, context.Canceled):
		return apiErr(http.StatusServiceUnavailable, "canceled", "request canceled")
	default:
		return apiErr(http.StatusInternalServerError, "internal", "internal error")
	}
}
