package rest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/catalog"
)

// The handlers of tables, renames and transactions, one per route (see
// routes). Each is named for the spec's operation.

// tableIdent is the request's {namespace} and {table}.
func tableIdent(r *http.Request) table.Identifier {
	return append(namespace(r), r.PathValue("table"))
}

func (h *handler) listTables(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	ns := namespace(r)
	pg, err := parsePage(r, "tables\x00"+strings.Join(ns, "\x1f"))
	if err != nil {
		return err
	}
	var names []string
	for id, err := range ic.ListTables(r.Context(), ns) {
		if err != nil {
			return err
		}
		names = append(names, id[len(id)-1])
	}
	names, next := pg.cut(names)
	ids := make([]identifier, len(names))
	for i, n := range names {
		ids[i] = identifier{Namespace: ns, Name: n}
	}
	writeJSON(w, listTablesResponse{Identifiers: ids, NextPageToken: next})
	return nil
}

func (h *handler) createTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req createTableRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("missing table name")
	}
	if req.Schema == nil {
		return badRequest("missing schema")
	}
	ident := append(namespace(r), req.Name)
	if req.StageCreate {
		// Nothing is written: the table is created by the commit that
		// follows, with an assert-create requirement (see commitTable).
		meta, err := ic.StageCreateTable(r.Context(), ident, req.Schema, req.options()...)
		if err != nil {
			return err
		}
		h.writeTable(w, r, "", meta)
		return nil
	}
	tbl, err := ic.CreateTable(r.Context(), ident, req.Schema, req.options()...)
	if err != nil {
		return err
	}
	h.writeTable(w, r, tbl.MetadataLocation(), tbl.Metadata())
	return nil
}

// registerTable answers POST .../namespaces/{namespace}/register: the
// table is the metadata file named, which must be in the repo's part of
// the warehouse (catalog.RegisterTable); one data commit.
func (h *handler) registerTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req registerTableRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("missing table name")
	}
	if req.MetadataLocation == "" {
		return badRequest("missing metadata-location")
	}
	tbl, err := ic.RegisterTable(r.Context(), append(namespace(r), req.Name), req.MetadataLocation, req.Overwrite)
	if err != nil {
		return err
	}
	h.writeTable(w, r, tbl.MetadataLocation(), tbl.Metadata())
	return nil
}

func (h *handler) loadTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	tbl, err := ic.LoadTable(r.Context(), tableIdent(r))
	if err != nil {
		return err
	}
	h.writeTable(w, r, tbl.MetadataLocation(), tbl.Metadata())
	return nil
}

// writeTable answers a LoadTableResult. loc is "" for a staged create,
// whose metadata is not written anywhere yet (the spec's field is then
// absent). The config tells the reader where the files are; it holds the
// server's keys only under WithVendedCredentials.
//
// A written table's answer has an ETag (etag): a GET whose If-None-Match
// names it is answered 304 Not Modified with no body.
func (h *handler) writeTable(w http.ResponseWriter, r *http.Request, loc string, meta table.Metadata) {
	out := loadTableResult{MetadataLocation: loc, Config: h.c.Warehouse().ReaderProps()}
	if h.vend {
		out.Config = h.c.Warehouse().Props()
	}
	if loc != "" {
		tag := etag(loc, out.Config, r.URL.Query().Get("snapshots"))
		w.Header().Set("ETag", tag)
		if r.Method == http.MethodGet && ifNoneMatch(r.Header.Get("If-None-Match"), tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if raw, ok := h.c.MetadataJSON(loc); ok && loc != "" {
		// The file's own bytes, spliced in as they are: encoding/json would
		// re-scan a RawMessage, which costs as much as serializing.
		head, err1 := json.Marshal(out)
		if err1 == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write(head[:len(head)-1])
			w.Write([]byte(`,"metadata":`))
			w.Write(raw)
			w.Write([]byte("}\n"))
			return
		}
	}
	out.Metadata = meta
	writeJSON(w, out)
}

func (h *handler) tableExists(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	ident := tableIdent(r)
	ok, err := ic.CheckTableExists(r.Context(), ident)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("NoSuchTableException", "table %s does not exist", strings.Join(ident, "."))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) commitTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	ident := tableIdent(r)
	var req commitTableRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Identifier != nil && strings.Join(req.Identifier.ident(), ".") != strings.Join(ident, ".") {
		return badRequest("identifier %s in the body does not match the path %s", strings.Join(req.Identifier.ident(), "."), strings.Join(ident, "."))
	}
	meta, loc, err := ic.CommitTable(r.Context(), ident, req.Requirements, req.Updates)
	if err != nil {
		return err
	}
	writeJSON(w, commitTableResponse{MetadataLocation: loc, Metadata: meta})
	return nil
}

func (h *handler) dropTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	if err := ic.DropTable(r.Context(), tableIdent(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reportMetrics takes a client's scan or commit report and drops it.
func (h *handler) reportMetrics(w http.ResponseWriter, r *http.Request, _ *catalog.IcebergCatalog) error {
	_, _ = io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) renameTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req renameTableRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Source == nil || req.Destination == nil {
		return badRequest("rename needs source and destination")
	}
	if _, err := ic.RenameTable(r.Context(), req.Source.ident(), req.Destination.ident()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) commitTransaction(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req commitTransactionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.TableChanges) == 0 {
		return badRequest("table-changes is empty")
	}
	commits := make([]table.TableCommit, len(req.TableChanges))
	for i, tc := range req.TableChanges {
		if tc.Identifier == nil {
			return badRequest("table-changes[%d] has no identifier", i)
		}
		commits[i] = table.TableCommit{Identifier: tc.Identifier.ident(), Requirements: tc.Requirements, Updates: tc.Updates}
	}
	if err := ic.CommitTransaction(r.Context(), commits); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// etag is the entity tag of a LoadTableResult: a hash of what the answer
// is made of. Metadata files are immutable and every version has a new
// name, so the metadata location names the metadata; the config and the
// snapshots parameter are the rest of the answer.
func etag(loc string, config iceberg.Properties, snapshots string) string {
	hs := sha256.New()
	fmt.Fprintf(hs, "%s\x00%s\x00", loc, snapshots)
	for _, k := range slices.Sorted(maps.Keys(config)) {
		fmt.Fprintf(hs, "%s=%s\x00", k, config[k])
	}
	return `"` + hex.EncodeToString(hs.Sum(nil)[:16]) + `"`
}

// ifNoneMatch reports whether an If-None-Match header names tag: "*", or
// a comma-separated list of entity tags compared weakly (RFC 9110: a
// W/ prefix is ignored).
func ifNoneMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
