package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors callers branch on.
var (
	// ErrConfig: New was given a Config it cannot serve with.
	ErrConfig = errors.New("api: bad config")
	// ErrDraining: Drain was called; the server takes no new generations.
	ErrDraining = errors.New("api: draining")
)

// OpenAI error types, the "type" field of an error body.
const (
	typeInvalidRequest = "invalid_request_error"
	typeNotFound       = "not_found_error"
	typeRateLimit      = "rate_limit_exceeded"
	typeUnavailable    = "service_unavailable"
	typeServer         = "server_error"
)

// apiError is an error as an OpenAI-style body says it:
//
//	{"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": null}}
//
// with the HTTP status it is sent with.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.Type, e.Message) }

// errorBody is the JSON envelope of an apiError.
type errorBody struct {
	Error *apiError `json:"error"`
}

// invalid is a 400 about the request field param ("" for the whole body).
func invalid(param, format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, typeInvalidRequest, param, "", format, args...)
}

func newError(status int, typ, param, code, format string, args ...any) *apiError {
	e := &apiError{status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}
