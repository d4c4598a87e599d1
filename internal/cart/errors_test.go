package cart

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/replstore"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		err          error
		status       int
		code         string
		storeFailure bool
	}{
		{fmt.Errorf("replstore: 1 of 2 copies: %w (%w)", session.ErrUnavailable, replstore.ErrNoQuorum), http.StatusServiceUnavailable, "no_quorum", true},
		{fmt.Errorf("redis: %w", session.ErrUnavailable), http.StatusServiceUnavailable, "store_unavailable", true},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, "store_unavailable", true},
		{session.ErrConflict, http.StatusConflict, "conflict", false},
		{ErrQtyRange, http.StatusBadRequest, "qty_out_of_range", false},
		{errors.New("a bug"), http.StatusInternalServerError, "internal", false},
	}
	for _, tt := range tests {
		e, storeFailure := classify(tt.err)
		if e.Status != tt.status || e.Code != tt.code || storeFailure != tt.storeFailure {
			t.Errorf("classify(%v) = %d %s %v, want %d %s %v", tt.err, e.Status, e.Code, storeFailure, tt.status, tt.code, tt.storeFailure)
		}
	}
}
