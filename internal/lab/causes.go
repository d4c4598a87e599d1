package lab

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/statelab/statelab/internal/httpapi"
)

// Why requests failed. A run's error rate alone does not say whether the
// balancer found no replica, the store was down, a write missed its quorum
// or the answer never came; RunResult.ErrorCauses counts each.

// answerCause names a non-2xx answer: its status and, when the body is the
// project's JSON error ({"error":{"code":…}}), the code, as
// "503 store_unavailable"; a body without one gives the status alone.
// Status 0 (no answer; the caller kept no error) is "no answer".
func answerCause(status int, body []byte) string {
	if status == 0 {
		return "no answer"
	}
	var e httpapi.ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" && len(e.Error.Code) <= 40 {
		return strconv.Itoa(status) + " " + e.Error.Code
	}
	return strconv.Itoa(status)
}

// transportCause names a request that got no answer.
func transportCause(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "no answer: timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "no answer: connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "no answer: connection reset"
	case errors.Is(err, context.Canceled):
		return "no answer: run ended"
	}
	return "no answer: connection closed"
}

// countCauses counts the causes of the failed samples (nil when none
// failed).
func countCauses(samples []sample) map[string]int64 {
	var out map[string]int64
	for _, s := range samples {
		if !s.err {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[cmp.Or(s.cause, "unknown")]++
	}
	return out
}

// causesText lists at most n causes, most frequent first, with their
// counts: "503 no_backend 41, no answer: timeout 3, +2 more".
func causesText(causes map[string]int64, n int) string {
	keys := make([]string, 0, len(causes))
	for k := range causes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(causes[b], causes[a]), strings.Compare(a, b))
	})
	parts := make([]string, 0, n)
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %d", k, causes[k]))
	}
	text := strings.Join(parts, ", ")
	if len(keys) > n {
		text += fmt.Sprintf(", +%d more", len(keys)-n)
	}
	return text
}
