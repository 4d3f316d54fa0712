package main

import (
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/runs"
	"github.com/weir-dev/weir/web"
)

// mountWeb serves the read-only web view on the HTTP listener: the repos
// at exactly "/", the rest under "/ui/" (Git's own paths there, of a repo
// named ui/<x>, still go to Git). Every other path stays Git's.
func (a *serveApp) mountWeb() error {
	if a.HTTPAccess == nil {
		return nil
	}
	h, err := web.New(web.Config{
		Access:  a.HTTPAccess,
		Catalog: a.Catalog,
		Objects: a.Objects,
		Runs:    runs.NewSource(a.Runs, a.Catalog, a.Objects),
		Git:     gitserver.NewHTTPHandler(a.Git, a.HTTPAccess),
		Logger:  a.Logger,
	})
	if err != nil {
		return err
	}
	a.Mux.Handle("/{$}", h)
	a.Mux.Handle("/ui/", h)
	return nil
}
