// Package web is the server's read-only web view: HTML pages, rendered
// on the server from html/template with the templates and the style
// sheet embedded, no JavaScript and no external assets.
//
//	GET / (or /ui/)                          the repos the viewer may read
//	GET /ui/<repo>                           branches (code and data heads), tags
//	GET /ui/<repo>/-/runs[?state=&branch=&page=]    runs, newest first
//	GET /ui/<repo>/-/runs/<id|latest>        one run: nodes with timing bars, tables written, log
//	GET /ui/<repo>/-/tables/<rev>            the tables of a data revision
//	GET /ui/<repo>/-/table/<ns.table>/<rev>[?from=<commit>]  schema, rows, history (lineage)
//	GET /ui/<repo>/-/diff/<a>..<b>           tables added, removed, changed between two data revisions
//	GET /ui/-/style.css                      the style sheet
//
// A repo name is one or two segments, so "/-/" ends it ("-" cannot start
// a segment of a repo name). A revision is what catalog.Resolve takes: a
// data branch, a data tag, a commit id (4 or more hex digits) with git's
// ~N and ^N (refs.ResolveRevision). Git's own paths under /ui/ (a repo
// named ui/<x>: /ui/<x>.git/info/refs, ...) are handed to the Git
// handler (gitserver.IsGitPath).
//
// Access is Git's: the listener's access view authenticates the request
// (anonymous only on loopback, else an HTTP token as the Basic password
// or a Bearer token); without an identity every page is 401; a repo the
// identity may not read is 404, as one that does not exist, and is not
// listed. Every part of a URL is a client's: the path is bounded
// (MaxPathLen), each part parsed by its owner (objects.ParseRepoName,
// refs.ResolveRevision, catalog.ParseTableName, hooks.ValidRunID) and
// refused with a 400 or 404 page that says what it wanted. Every text
// that came from a client (commit subjects, branch names, node names and
// their output in a run's log) is escaped by html/template, and a
// Content-Security-Policy that allows no script backs that up. Work per
// page is bounded: lists are cut (maxList), runs are paged (runsPerPage),
// a table's history reads at most historyWalk commits per page.
//
// It only reads: it must never move a ref, write an object or a table,
// or start a run.
package web
