// Package catalog owns Iceberg tables on data refs: the table pointers a data
// commit holds, the Iceberg metadata and Parquet files in the warehouse, the
// iceberg-go catalog.Catalog over one repo and one branch (served over HTTP
// by catalog/rest as the Iceberg REST catalog), data branches and tags, and
// 3-way data merges (branches.go: Merge for `weir data merge`; MergeOnto and
// ChangedTables for a run published onto data that moved during it, which
// the pipeline hook decides and moves no ref here).
//
// It must never move an existing code ref (refs/heads/*; it creates one
// only beside a new data branch, CreateBranch), never make a data ref point
// at a commit whose tables are not all fully written (metadata and data files
// are written to the warehouse before the commit object that names them), and
// never put on a data ref a pointer that was not published: written by the
// server and stood on a data ref through a successful run, a REST commit,
// an import or a merge (invariant 6, "honest pointers": publish.go,
// VerifyPushedDataCommit). A failed run's pointers are evidence only.
//
// # Data commits
//
// A data commit is a Git commit whose tree is:
//
//	tables/<namespace>/<table>   table pointer (blob, text, see Pointer)
//	namespaces/<namespace>       namespace properties (blob, JSON, sorted keys)
//	code                         gitlink (mode 160000) to the code commit, when known
//
// A namespace may be nested: <namespace> is then its levels joined by '.'
// (Iceberg's ["sales", "eu"] is tables/sales.eu/<table> and
// namespaces/sales.eu), one entry whatever the depth. A level is
// [a-z0-9_]+ and holds no '.', so the joined form names one list of levels,
// a table and a child namespace of one name (table eu in sales, namespace
// sales.eu) are different entries, and a single-level tree is the same as
// before nesting existed: no migration. A namespace has at most
// MaxNamespaceDepth (16) levels and MaxNamespaceLen (255) bytes joined,
// the longest file name common file systems hold, as it is one name in a
// checkout of the data ref and one folder in the warehouse. A nested
// namespace is created only in an existing parent, and a namespace with
// tables or child namespaces is not dropped (a merge keeps the parents of
// the namespaces it keeps). Pipelines name tables in single-level
// namespaces (hooks); the REST catalog, weir import, weir query and the web
// view reach nested ones by their dotted name (ParseTableName splits at
// the last '.').
//
// Its message says what changed ("weir: append 3 rows to sales.orders") and
// carries trailers (Run:, Code-Commit:, Table-Changes:) so that `git log`
// shows lineage (invariant 7). Author and committer are Weir <weir@localhost>.
//
// The rows, files and bytes of a pointer, and the row counts in a message,
// are counted from the manifests of the table's current snapshot (live
// entries' record_count and file_size_in_bytes), never taken from the
// snapshot summary a client wrote; every snapshot a commit adds gets its
// summary's totals and added/deleted figures set to those counts, so a
// summary that omits them gets them and one that lies is corrected, not
// refused (counts.go).
//
// A branch b owns refs/data/b; a data tag t is refs/tags/data/t and points at
// a data commit. Branch creation copies one ref: O(1), nothing is copied.
//
// Lineage: WriteDataCommit records the run and code commit it is given;
// writes through the Iceberg catalog record a run id "iceberg-<random>" and,
// as code commit, refs/heads/<branch> at the time of the write.
//
// # Keys
//
// The catalog shares the kv database of objects.Store (objects.Store.DB;
// objects owns 'o', 's' and 'S', refs owns 'r' and 'l'). The catalog owns 'w':
//
//	key                                  value
//	'w' <repo> 0x00 <blobhash:20>        <kind:1> ['P']  ('p' table pointer, 'n' namespace; 'P': published)
//	'w' <repo> 0x01 "published"          <version:1>     the repo's published index is complete
//
// One key per blob the server itself wrote into a data tree; its second
// value byte 'P' says the blob was published (publish.go has the rules and
// the repo's index marker). A pushed data commit (a client-side merge or
// revert) is accepted only if every blob in its tree is published. The
// keys are written without sync, before the commit that references the
// blob; the synced ref update that publishes the commit makes them durable
// too (the kv contract loses unsynced writes only as a suffix).
//
// # Warehouse layout
//
//	<root>/<repo>/<namespace>/<table>/metadata/<version>-<uuid>.metadata.json
//	<root>/<repo>/<namespace>/<table>/metadata/snap-*.avro, *-m*.avro
//	<root>/<repo>/<namespace>/<table>/data/<uuid>.parquet
//
// where <repo> has its '/' replaced by '@' ("team/demo" -> "team@demo"),
// which repo names cannot otherwise contain, and a nested <namespace> is
// one folder, its levels joined by '.' (sales.eu/orders), so no table's
// folder holds another table's. <root> is s3://bucket/prefix
// for S3; for the local warehouse it is file:///<dir>, or s3://weir when
// new tables are named for the S3 endpoint (WithS3Names: weir serve --s3,
// see catalog/s3): the local warehouse resolves both names of a file to
// the same path under the same os.Root, and a table keeps the name it was
// created with (Iceberg metadata holds absolute locations).
//
// Data files the server puts in a table carry the table schema's field
// ids in their Parquet schema (a node's or an import's file without them
// is written again with them, parquetids.go), so readers need no name
// mapping. Manifests and manifest lists the server writes are Avro files whose
// deflate blocks each end with a final block that holds data (avro.go):
// Go's compress/flate ends every stream with an empty final stored
// block, which some readers' inflaters refuse.
//
// Iceberg metadata files are immutable (every version has a new name), so
// the catalog caches parsed metadata by location.
//
// # Confinement (invariant 9)
//
// The catalog reaches a repo's files only through the repo's Area
// (Warehouse.Area(<repo>)): locally an os.Root at <root>/<repo>, through
// which iceberg-go's FileIO, uploads, fsyncs and the local paths handed to
// pipelines and queries all go, so no "..", symlink or hard link name
// leads out of the folder; on S3 a check of every key against
// <prefix>/<repo>/. Every location is interpreted by one canonicaliser
// (location.go): only canonical scheme://host/path forms strictly under
// the repo's prefix are accepted, compared segment by segment, with no
// percent-escape, dot or empty segment, query, fragment, backslash or
// control character; anything else is ErrBadLocation or ErrOutsideRepo
// (REST: 400 BadRequestException).
//
// A commit may name no file outside its repo's part of the warehouse: a
// table's location, its write.data.path and write.metadata.path, its
// statistics files, the manifest list of every new snapshot, the
// manifests that list names and the data files the new snapshot's own
// manifests add are all checked before the commit is published (REST
// commits read the new manifest lists and manifests to do so; a table
// registered from a metadata file, RegisterTable, is checked the same way,
// every snapshot of it being new). Files read
// later (ReadTableFiles, scans) go through the Area again.
//
// Text shown to a client never carries the server's paths: errors name
// files relative to the repo's folder, and Catalog.Redact cuts the
// warehouse root from what reaches a REST error body or weir query.
// (A LoadTableResult does carry absolute locations: Iceberg readers open
// files by them.)
//
// # Garbage collection
//
// gc.go gives package gc what it needs, all through each repo's Area:
// the files a table pointer names (FileSet: metadata, metadata log,
// statistics, every snapshot's manifest list, manifests, data and delete
// files), the files an area holds with their age (the later of mtime and
// ctime locally, LastModified on S3), removal, and ForgetBlobs, which
// drops the 'w' records of collected blobs in the collection's own batch,
// so a collected pointer is no longer published.
//
// # Concurrency
//
// Every write is a compare-and-swap of refs/data/<branch> through
// refs.Store.Update, made by the branch's committer (committer.go): writes
// to one branch in this process queue, and the first in line publishes
// every queued write as one data commit with one synced ref update (group
// commit). Each write is applied in turn to the state the ones before it
// left, and one that fails (a requirement no longer holds) is refused
// alone. Each table's metadata file is written once per batch, its last
// version. A batch that loses the CAS to a writer outside the committer
// (a push) is applied again on the new head. The files the server writes
// for a batch (metadata, rebased manifest lists) are synced concurrently
// and off the leader's serial path, and the ref update waits for every
// one of them (durable.go): an acknowledged write survives a crash.
//
// A fast append whose branch moved since the client loaded the table (the
// only failing requirement is assert-ref-snapshot-id of the branch it
// appends to) is applied on top of the current snapshot by the server, as
// the client's own retry would be (rebase.go): same snapshot id, new
// parent, next sequence number, a new manifest list with the current
// snapshot's manifests after the append's own. Anything else that no
// longer holds fails with table.ErrCommitFailed (REST: 409
// CommitFailedException) so the Iceberg client refreshes and retries.
package catalog
