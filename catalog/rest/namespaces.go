package rest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/objects"
)

// The handlers of /v1/config and of namespaces, one per route (see
// routes). Each is named for the spec's operation.

// config answers GET /v1/config[?warehouse=<repo>@<branch>]: the prefix
// of that branch as an override, and the endpoints this server serves.
func (h *handler) config(w http.ResponseWriter, r *http.Request, _ *catalog.IcebergCatalog) error {
	wh := r.URL.Query().Get("warehouse")
	overrides := map[string]string{}
	if wh != "" {
		repo, branch, ok := strings.Cut(wh, "@")
		if !ok || branch == "" {
			return badRequest("warehouse %q: want <repo>@<branch> (or <repo>@<data-tag>, <repo>@<commit>)", wh)
		}
		rn, err := objects.ParseRepoName(repo)
		if err != nil {
			return err
		}
		if err := h.repoExists(r.Context(), rn, branch); err != nil {
			return err
		}
		// The branch (or tag, or commit) must be one the catalog opens: a
		// branch with data, or one a first write creates (a code branch of
		// that name, or a repo with no data yet).
		if _, err := h.c.Iceberg(r.Context(), rn, branch, ""); errors.Is(err, catalog.ErrNoSuchBranch) {
			return notFound("NotFoundException", "warehouse %q: repo %s has no branch, data tag or commit %q (push the branch first, or name one that exists)", wh, rn, branch)
		} else if err != nil {
			return err
		}
		overrides["prefix"] = url.PathEscape(string(rn)) + "/" + url.PathEscape(branch)
	}
	writeJSON(w, catalogConfig{Defaults: map[string]string{}, Overrides: overrides, Endpoints: h.router.endpoints})
	return nil
}

// namespace is the request's {namespace}.
func namespace(r *http.Request) table.Identifier { return nsIdent(r.PathValue("namespace")) }

func (h *handler) listNamespaces(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var parent table.Identifier
	p := r.URL.Query().Get("parent")
	if p != "" {
		parent = nsIdent(p)
	}
	pg, err := parsePage(r, "namespaces\x00"+p)
	if err != nil {
		return err
	}
	nss, err := ic.ListNamespaces(r.Context(), parent)
	if err != nil {
		return err
	}
	names := make([]string, len(nss))
	byName := make(map[string]table.Identifier, len(nss))
	for i, ns := range nss {
		names[i] = strings.Join(ns, "\x1f")
		byName[names[i]] = ns
	}
	names, next := pg.cut(names)
	out := make([]table.Identifier, len(names))
	for i, n := range names {
		out[i] = byName[n]
	}
	writeJSON(w, listNamespacesResponse{Namespaces: out, NextPageToken: next})
	return nil
}

func (h *handler) createNamespace(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req createNamespaceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Namespace) == 0 {
		return badRequest("missing namespace")
	}
	if err := ic.CreateNamespace(r.Context(), req.Namespace, req.Properties); err != nil {
		return err
	}
	props := req.Properties
	if props == nil {
		props = iceberg.Properties{}
	}
	writeJSON(w, namespaceResponse{Namespace: req.Namespace, Properties: props})
	return nil
}

func (h *handler) loadNamespace(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	ns := namespace(r)
	props, err := ic.LoadNamespaceProperties(r.Context(), ns)
	if err != nil {
		return err
	}
	writeJSON(w, namespaceResponse{Namespace: ns, Properties: props})
	return nil
}

func (h *handler) namespaceExists(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	ok, err := ic.CheckNamespaceExists(r.Context(), namespace(r))
	if err != nil {
		return err
	}
	if !ok {
		return notFound("NoSuchNamespaceException", "namespace %s does not exist", r.PathValue("namespace"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) dropNamespace(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	if err := ic.DropNamespace(r.Context(), namespace(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) updateNamespace(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req updateNamespacePropertiesRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	for _, k := range req.Removals {
		if _, ok := req.Updates[k]; ok {
			return &httpError{http.StatusUnprocessableEntity, "UnprocessableEntityException", fmt.Sprintf("property %q is both in removals and in updates; nothing was changed", k)}
		}
	}
	sum, err := ic.UpdateNamespaceProperties(r.Context(), namespace(r), req.Removals, req.Updates)
	if err != nil {
		return err
	}
	writeJSON(w, sum)
	return nil
}
