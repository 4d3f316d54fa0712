// Package rest serves the Iceberg REST catalog API over a catalog.Catalog,
// so that any Iceberg engine (Spark, Trino, Flink, DuckDB, iceberg-go,
// PyIceberg) reads and writes Weir tables at a branch.
//
// It owns only the HTTP translation: routing, request decoding, and the one
// place where catalog errors become REST error bodies (errorFor). It must
// never touch refs, objects or the warehouse except through catalog.
//
// # URLs
//
// Mounted by `weir serve` at /iceberg/ (the handler also accepts paths
// without that prefix):
//
//	GET  /iceberg/v1/config?warehouse=<repo>@<branch>
//	     -> {"overrides": {"prefix": "<repo>/<branch>"}, "endpoints": [...]}
//	     /iceberg/v1/<repo>/<branch>/namespaces[/<ns>[/properties|/tables[/<table>]]]
//	     /iceberg/v1/<repo>/<branch>/tables/rename
//	     /iceberg/v1/<repo>/<branch>/transactions/commit
//
// <repo> and <branch> are each one path segment, url-escaped ("team/demo"
// is "team%2Fdemo"). A data tag or a 40-hex data commit in place of
// <branch> is a read-only view: writes answer 403 ForbiddenException.
//
// Every write is one data commit on refs/data/<branch> (see catalog).
//
// # Access
//
// An Authorizer decides each request and names the identity recorded in
// the commits it makes. The default allows loopback clients only.
package rest
