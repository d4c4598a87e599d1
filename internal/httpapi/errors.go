package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBodyBytes is the largest request body DecodeBody reads; a larger one is
// answered 413.
const MaxBodyBytes = 64 << 10

// RetryAfterSeconds is the Retry-After of every 503 WriteError sends.
const RetryAfterSeconds = 1

// Error is an error the API answers with: an HTTP status and a short
// machine-readable code besides the human-readable message.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorBody is the JSON shape of every error response:
// {"error":{"code":"…","message":"…"}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes e as a JSON error response. A 503 carries Retry-After;
// a 405 is expected to have its Allow header set by the caller.
func WriteError(w http.ResponseWriter, e *Error) {
	var body ErrorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	WriteJSON(w, e.Status, body)
}

// WriteJSON writes v as the JSON response body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The only possible error is the client going away; there is no one
	// left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeBody decodes the request's JSON body into v: Content-Type
// application/json for a non-empty body (415 otherwise, so that a
// cross-site HTML form, which can only send form or text types, cannot
// write), at most MaxBodyBytes
// (413 beyond), exactly one JSON object with at least one field, and no
// unknown fields (400 bad_json otherwise: null, {} and other non-objects
// included). The error it returns is an *Error.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); r.ContentLength != 0 && (err != nil || mt != "application/json") {
		return &Error{http.StatusUnsupportedMediaType, "unsupported_media_type", "the request body must be sent as Content-Type: application/json"}
	}
	var raw json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	err := dec.Decode(&raw)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON value")
			if mbe := new(http.MaxBytesError); errors.As(terr, &mbe) {
				err = terr
			}
		}
	}
	if err == nil && !nonEmptyObject(raw) {
		return &Error{http.StatusBadRequest, "bad_json", "request body must be a JSON object with this endpoint's fields"}
	}
	if err == nil {
		strict := json.NewDecoder(bytes.NewReader(raw))
		strict.DisallowUnknownFields()
		err = strict.Decode(v)
	}
	if err == nil {
		return nil
	}
	if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
		return &Error{http.StatusRequestEntityTooLarge, "body_too_large", "request body is over " + strconv.Itoa(MaxBodyBytes) + " bytes"}
	}
	if errors.Is(err, io.EOF) {
		return &Error{http.StatusBadRequest, "bad_json", "request body is empty; expected a JSON object"}
	}
	return &Error{http.StatusBadRequest, "bad_json", "request body is not valid JSON for this endpoint: " + err.Error()}
}

// nonEmptyObject reports whether raw is a JSON object with at least one
// member.
func nonEmptyObject(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) > 0
}

// ByMethod dispatches on the request method; GET handlers also serve HEAD.
// Any other method is answered 405 with an Allow header.
func ByMethod(methods map[string]http.HandlerFunc) http.HandlerFunc {
	allowed := make([]string, 0, len(methods)+1)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if methods[m] != nil || (m == http.MethodHead && methods[http.MethodGet] != nil) {
			allowed = append(allowed, m)
		}
	}
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		h := methods[r.Method]
		if h == nil && r.Method == http.MethodHead {
			h = methods[http.MethodGet]
		}
		if h == nil {
			w.Header().Set("Allow", allow)
			WriteError(w, &Error{http.StatusMethodNotAllowed, "method_not_allowed", r.Method + " is not allowed here; use " + allow})
			return
		}
		h(w, r)
	}
}
