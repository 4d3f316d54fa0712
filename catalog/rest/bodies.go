package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// Request and response bodies, named and shaped as the Iceberg REST
// OpenAPI spec (open-api/rest-catalog-open-api.yaml in apache/iceberg)
// has them. A field the spec makes nullable and this server sends as
// null (next-page-token on the last page) has no omitempty: it is
// present and null. The update-properties answer is iceberg-go's own
// icebergcat.PropertiesUpdateSummary, which is the spec's
// UpdateNamespacePropertiesResponse.

// catalogConfig is the spec's CatalogConfig, the answer of /v1/config.
type catalogConfig struct {
	Defaults  map[string]string `json:"defaults"`
	Overrides map[string]string `json:"overrides"`
	Endpoints []string          `json:"endpoints"`
}

// errorResponse is the spec's IcebergErrorResponse: every non-2xx body.
type errorResponse struct {
	Error errorModel `json:"error"`
}

// errorModel is the spec's ErrorModel. Code is the HTTP status.
type errorModel struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

// namespaceResponse is the spec's GetNamespaceResponse, and its
// CreateNamespaceResponse, which has the same fields.
type namespaceResponse struct {
	Namespace  table.Identifier   `json:"namespace"`
	Properties iceberg.Properties `json:"properties"`
}

// listNamespacesResponse is the spec's ListNamespacesResponse.
type listNamespacesResponse struct {
	Namespaces    []table.Identifier `json:"namespaces"`
	NextPageToken *string            `json:"next-page-token"`
}

// listTablesResponse is the spec's ListTablesResponse.
type listTablesResponse struct {
	Identifiers   []identifier `json:"identifiers"`
	NextPageToken *string      `json:"next-page-token"`
}

// loadTableResult is the spec's LoadTableResult (load table, create
// table, staged create). MetadataLocation is absent for a staged create,
// whose metadata is written nowhere yet. Metadata is nil when writeTable
// splices the metadata file's own bytes in after the other fields.
type loadTableResult struct {
	MetadataLocation string             `json:"metadata-location,omitempty"`
	Config           iceberg.Properties `json:"config"`
	Metadata         table.Metadata     `json:"metadata,omitempty"`
}

// commitTableResponse is the spec's CommitTableResponse.
type commitTableResponse struct {
	MetadataLocation string         `json:"metadata-location"`
	Metadata         table.Metadata `json:"metadata"`
}

// identifier is the spec's TableIdentifier.
type identifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

func (id identifier) ident() table.Identifier {
	return append(append(table.Identifier{}, id.Namespace...), id.Name)
}

// createNamespaceRequest is the spec's CreateNamespaceRequest.
type createNamespaceRequest struct {
	Namespace  table.Identifier   `json:"namespace"`
	Properties iceberg.Properties `json:"properties"`
}

// updateNamespacePropertiesRequest is the spec's
// UpdateNamespacePropertiesRequest.
type updateNamespacePropertiesRequest struct {
	Removals []string           `json:"removals"`
	Updates  iceberg.Properties `json:"updates"`
}

// createTableRequest is the spec's CreateTableRequest.
type createTableRequest struct {
	Name          string                        `json:"name"`
	Schema        *iceberg.Schema               `json:"schema"`
	Location      string                        `json:"location"`
	PartitionSpec *iceberg.UnboundPartitionSpec `json:"partition-spec"`
	WriteOrder    *table.UnboundSortOrder       `json:"write-order"`
	StageCreate   bool                          `json:"stage-create"`
	Properties    iceberg.Properties            `json:"properties"`
}

// options are the request's optional fields as iceberg-go create
// options.
func (req *createTableRequest) options() []icebergcat.CreateTableOpt {
	var opts []icebergcat.CreateTableOpt
	if req.Location != "" {
		opts = append(opts, icebergcat.WithLocation(req.Location))
	}
	if req.PartitionSpec != nil {
		spec := req.PartitionSpec.PartitionSpec
		opts = append(opts, icebergcat.WithPartitionSpec(&spec))
	}
	if req.WriteOrder != nil {
		opts = append(opts, icebergcat.WithSortOrder(req.WriteOrder.SortOrder))
	}
	if req.Properties != nil {
		opts = append(opts, icebergcat.WithProperties(req.Properties))
	}
	return opts
}

// registerTableRequest is the spec's RegisterTableRequest.
type registerTableRequest struct {
	Name             string `json:"name"`
	MetadataLocation string `json:"metadata-location"`
	Overwrite        bool   `json:"overwrite"`
}

// commitTableRequest is the spec's CommitTableRequest: the body of a
// table commit, and each of a transaction's table-changes.
type commitTableRequest struct {
	Identifier   *identifier        `json:"identifier"`
	Requirements table.Requirements `json:"requirements"`
	Updates      table.Updates      `json:"updates"`
}

// commitTransactionRequest is the spec's CommitTransactionRequest.
type commitTransactionRequest struct {
	TableChanges []commitTableRequest `json:"table-changes"`
}

// renameTableRequest is the spec's RenameTableRequest.
type renameTableRequest struct {
	Source      *identifier `json:"source"`
	Destination *identifier `json:"destination"`
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads the request body, one JSON value and nothing after it,
// into v: a 400 when it is malformed, a 413 past MaxBodyBytes.
func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return badRequest("missing request body")
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{http.StatusRequestEntityTooLarge, "BadRequestException", fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
		}
		return badRequest("malformed request body: %v", err)
	}
	if dec.More() {
		return badRequest("malformed request body: trailing data after the JSON object")
	}
	return nil
}

// nsIdent splits a namespace path segment on the unit separator.
func nsIdent(s string) table.Identifier { return table.Identifier(strings.Split(s, "\x1f")) }
