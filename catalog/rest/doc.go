// Package rest serves the Iceberg REST catalog API over a catalog.Catalog,
// so that any Iceberg engine (Spark, Trino, Flink, DuckDB, iceberg-go,
// PyIceberg) reads and writes Weir tables at a branch.
//
// It owns only the HTTP translation: routing, request decoding, and the one
// place where catalog errors become REST error bodies (errorFor). It must
// never touch refs, objects or the warehouse except through catalog.
//
// # Routes
//
// One table, routes (routes.go), lists every endpoint as the spec names
// it ("POST /v1/{prefix}/namespaces/{namespace}/tables") with its
// handler. The same table builds the net/http ServeMux patterns requests
// are matched with ({prefix} is {repo}/{branch} there) and the
// "endpoints" that /v1/config advertises, so what is served and what is
// advertised cannot drift (TestEndpointsAreTheRoutes). A request is
// answered in this order: authenticate (Authorizer, 401), find the route,
// parse the prefix (400), RepoAccess (403), open the repo and branch
// (404), then the route, or 404 "no such endpoint", or 405. Bodies are
// the spec's types (bodies.go): CatalogConfig, LoadTableResult, ...
//
// # URLs
//
// Mounted by `weir serve` at /iceberg/ (the handler also accepts paths
// without that prefix):
//
//	GET  /iceberg/v1/config?warehouse=<repo>@<branch>
//	     -> {"overrides": {"prefix": "<repo>/<branch>"}, "endpoints": [...]}
//	     -> 404 NotFoundException naming the branch when the repo has no
//	        such branch, data tag or commit (a code branch without data is
//	        found: its first write creates the data branch)
//	     /iceberg/v1/<repo>/<branch>/namespaces[/<ns>[/properties|/register|/tables[/<table>]]]
//	     /iceberg/v1/<repo>/<branch>/tables/rename
//	     /iceberg/v1/<repo>/<branch>/transactions/commit
//
// <repo> and <branch> are each one path segment, url-escaped ("team/demo"
// is "team%2Fdemo"). A data tag or a 40-hex data commit in place of
// <branch> is a read-only view: writes answer 403 ForbiddenException.
//
// Every write is one data commit on refs/data/<branch> (see catalog).
//
// # Staged create
//
// POST .../namespaces/<ns>/tables with "stage-create": true answers a
// LoadTableResult with the table's initial metadata and no
// metadata-location, and writes nothing: no file, no pointer, no commit.
// The table is created by the client's following POST
// .../namespaces/<ns>/tables/<table> (or transactions/commit) whose
// requirements include assert-create and whose updates set the table up
// (assign-uuid, add-schema, ...); that commit is one data commit. A staged
// create that is never committed leaves no trace.
//
// # Register
//
// POST .../namespaces/<ns>/register {"name", "metadata-location",
// "overwrite"} makes a table of a metadata file already in the repo's own
// part of the warehouse (catalog.IcebergCatalog.RegisterTable): the file
// and everything it names (manifest lists, manifests, the data files they
// add) must resolve in the repo's Area, exactly as for a commit; anything
// else is a 400 that changes nothing. It is a write like a commit: the same
// Authorizer and RepoAccess (403 on a tag, or where the branch's rules
// refuse REST writes), and one data commit "register table ..." whose
// pointer counts the rows from the manifests.
//
// # ETag
//
// A LoadTableResult of a written table (load, create, register) carries
// an ETag: a hash of the metadata location (which names one immutable
// metadata version), the config and the snapshots parameter. A GET whose
// If-None-Match names it ("*", a list, W/ ignored) is answered 304 Not
// Modified with no body. A commit, or a config that changes (vended
// credentials), gives a new tag.
//
// # Namespaces and views
//
// Namespaces nest, as the spec has them: a list of levels in a body, the
// levels joined by the unit separator in a URL ("sales\x1feu", %1F), and
// list namespaces answers the top-level namespaces, or with
// parent=<levels> the namespaces directly in that one, each as its full
// list of levels. Each level is [a-z0-9_]+ (so no '.', '/', NUL, unit
// separator or empty level), at most 16 levels and 255 bytes joined by
// '.' (catalog.JoinNamespace); anything else is a 400 BadRequestException
// saying which level is wrong, and nothing is written. A nested namespace
// is created only in an existing parent (404 NoSuchNamespaceException
// otherwise), and one with tables or child namespaces is not dropped (409
// NamespaceNotEmptyException). The data tree holds a nested namespace as
// one entry, its levels joined by '.' (catalog/doc.go).
//
// Views are not served and not advertised: a view's metadata would need
// its own pointers, published index kind and merge rules in the data
// tree, which holds tables and namespaces only. The view endpoints answer
// 404 NotFoundException ("no such endpoint ...: this catalog serves no
// views"), as the spec has it for an endpoint a server does not list in
// /v1/config.
//
// # Pagination
//
// List namespaces and list tables take pageToken and pageSize as the spec
// has them: without pageToken every result comes at once; with it (empty
// for the first page) at most pageSize (default 100, at most 1000), and a
// next-page-token while more remain (null on the last page). Tokens are
// opaque: the listing and the last name returned (see parsePage). A token
// that does not decode or belongs to another listing is a 400.
//
// # Storage credentials
//
// The "config" of a LoadTableResult tells the reader where the warehouse
// is (S3 endpoint, region, addressing: Warehouse.ReaderProps). It carries
// the server's own S3 keys only under WithVendedCredentials (weir serve
// --iceberg-vend-credentials), which hands them to every client allowed
// to load a table; by default readers bring their own credentials. No key
// is ever logged. With WithTableCredentials (weir serve --s3, the S3
// endpoint of the local warehouse, catalog/s3) load table and create
// table answer instead the endpoint, path-style addressing, the region
// and short-lived credentials scoped to the repo's files: write (new keys
// under that table) for a branch the identity may write, read-only for a
// data tag, a commit or a reader.
//
// # Access
//
// An Authorizer decides each request and names the identity recorded in
// the commits it makes. The default allows loopback clients only.
//
// # Failures
//
// Bad input is a 4xx that changes nothing (FuzzRESTBodies checks this on
// arbitrary bodies); a 5xx means storage failed. A location outside the
// repo's part of the warehouse, or not in canonical form (see catalog's
// Confinement), is a 400 BadRequestException. Error messages pass
// through catalog.Redact: they name locations relative to the warehouse,
// never the server's own paths. A panic in a request is
// recovered, logged with its stack, and answered 500; nothing is
// published before the final compare-and-swap, so it changed nothing.
package rest
