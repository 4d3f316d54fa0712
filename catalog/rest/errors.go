package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/objects"
)

// httpError is an error with a chosen status and REST error type.
type httpError struct {
	code int
	typ  string
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, "BadRequestException", fmt.Sprintf(format, a...)}
}

func notFound(typ, format string, a ...any) error {
	return &httpError{http.StatusNotFound, typ, fmt.Sprintf(format, a...)}
}

func methodNotAllowed(r *http.Request) error {
	return &httpError{http.StatusMethodNotAllowed, "BadRequestException", fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)}
}

// restErrors are the REST answers to catalog errors, tried in order with
// errors.Is; anything else is a 500.
var restErrors = []struct {
	err  error
	code int
	typ  string
}{
	{icebergcat.ErrNoSuchTable, http.StatusNotFound, "NoSuchTableException"},
	{icebergcat.ErrNoSuchNamespace, http.StatusNotFound, "NoSuchNamespaceException"},
	{catalog.ErrNoSuchBranch, http.StatusNotFound, "NotFoundException"},
	{icebergcat.ErrTableAlreadyExists, http.StatusConflict, "AlreadyExistsException"},
	{icebergcat.ErrNamespaceAlreadyExists, http.StatusConflict, "AlreadyExistsException"},
	{icebergcat.ErrNamespaceNotEmpty, http.StatusConflict, "NamespaceNotEmptyException"},
	{table.ErrCommitFailed, http.StatusConflict, "CommitFailedException"},
	{catalog.ErrReadOnly, http.StatusForbidden, "ForbiddenException"},
	{catalog.ErrBadName, http.StatusBadRequest, "BadRequestException"},
	{catalog.ErrBadUpdate, http.StatusBadRequest, "BadRequestException"},
	{catalog.ErrBadLocation, http.StatusBadRequest, "BadRequestException"},
	{catalog.ErrOutsideRepo, http.StatusBadRequest, "BadRequestException"},
	{objects.ErrBadRepoName, http.StatusBadRequest, "BadRequestException"},
	{icebergcat.ErrEmptyCommitList, http.StatusBadRequest, "BadRequestException"},
}

// errorFor is the one place catalog errors become REST errors: an
// httpError answers its own status and type, a catalog error the one
// restErrors gives it.
func errorFor(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.code, he.typ
	}
	for _, e := range restErrors {
		if errors.Is(err, e.err) {
			return e.code, e.typ
		}
	}
	return http.StatusInternalServerError, "InternalServerError"
}

// writeError answers err as a REST error body. The log gets the whole
// message; the client gets it without the server's own paths
// (catalog.Redact): locations read relative to the warehouse.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, typ := errorFor(err)
	if code == http.StatusInternalServerError {
		h.log.Error("iceberg rest", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		h.log.Info("iceberg rest refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err.Error())
	}
	msg := h.c.Redact(err.Error())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(errorResponse{Error: errorModel{Message: msg, Type: typ, Code: code}})
}
