// Package s3 owns the S3 endpoint of the local warehouse: an S3-compatible
// HTTP API (path-style, one bucket, "weir") over catalog.LocalWarehouse,
// and the credentials the Iceberg REST catalog vends for it, so that an
// Iceberg engine on another machine reads and writes Weir's tables with
// its ordinary S3 FileIO.
//
// It must never reach a file but through the warehouse's confinement
// (catalog.LocalWarehouse.Bucket: the one canonicaliser, then the repo
// folder's os.Root), never answer a request that is not signed with
// credentials it vended and that have not expired, never overwrite or
// delete a file of the warehouse, and never hand out the server's secret.
//
// # Locations: why s3://weir/ and not file://
//
// Iceberg metadata holds absolute locations (metadata JSON, manifest
// lists, manifests, data files), so a table created with file:///srv/...
// locations cannot be read from another machine whatever the server
// serves: its manifests name file:// paths. Rewriting locations on the
// fly would mean rewriting Avro manifests per request; serving file://
// under a different name would mean clients translate. Instead the local
// warehouse has a second name (catalog.LocalWarehouse): s3://weir/<key>
// is the file <warehouse>/<key>, and with the endpoint on (weir serve
// --s3, the default) new tables are created with s3://weir/<repo>/...
// locations (catalog.WithS3Names). The server itself still reads and
// writes them on disk through the repo's os.Root (Area resolves both
// names); readers elsewhere read them through this endpoint. Tables
// created before keep their file:// locations for good: the server and
// local readers read them as before, and the REST catalog vends nothing
// for them (their config stays as it was). The bucket name is a constant
// so that a table's locations never depend on a flag.
//
// # Protocol and library choice
//
// Served: GetObject (Range, conditional headers: http.ServeContent, with
// sendfile), HeadObject, ListObjectsV2 (prefix, delimiter, start-after,
// continuation-token, max-keys, encoding-type=url), PutObject,
// CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload, DeleteObject, ListBuckets, HeadBucket and
// GetBucketLocation. Not served (501 NotImplemented): copy, ListParts,
// ListObjects v1, aws-chunked bodies (STREAMING-* payloads; clients send
// whole bodies over plain HTTP), presigned URLs, virtual-hosted
// addressing.
//
// SigV4 is not reimplemented: the signature is recomputed with
// aws-sdk-go-v2's own v4 signer (already a dependency) over a copy of the
// request holding only the headers the client signed, and compared in
// constant time. The HTTP/XML surface is this package's (a few hundred
// lines) because the candidates did not fit: versitygw (a production
// gateway with a POSIX backend) authenticates against an account table
// with no session tokens or per-prefix scopes, runs on Fiber with its own
// large module graph, and its POSIX backend opens paths itself, which
// would be a second path checker beside the os.Root confinement
// (invariant 9); gofakes3 (in go.mod for tests) checks no signatures and
// keeps multipart parts in memory.
//
// # Credentials
//
// A credential is stateless (creds.go): the session token is a grant
// (repo folder, scope, write prefix, expiry) in JSON, base64url,
// with an HMAC-SHA256 of it under a key derived from the server's secret
// (<data>/s3-vending.key, 32 random bytes, 0600, made at first start).
// The access key id and the secret key are two more HMACs of the token, so
// the server re-derives the secret from the token a request carries and
// checks the signature; nothing is stored per credential. (Tokens already
// verified are kept in a bounded in-memory cache, at most 4096, with
// their grant and keys, which the token's bytes fix; expiry and the
// access key id are checked on every request. One engine reading a table
// sends hundreds of ranged GETs with one token.) Scopes:
//
//	read   GET/HEAD/list every key under <repo>/ (the whole repo: anyone
//	       who may read one branch's data may read every file of the repo)
//	write  read, plus PUT and multipart uploads of NEW keys under one
//	       table's location (<repo>/<ns>/<table>/); never an overwrite
//	       (a key that exists is AccessDenied: Iceberg files are
//	       immutable, and an overwrite would change published history)
//	       and never a delete of an existing key
//
// Iceberg writers (iceberg-go, Java, PyIceberg) write new data files,
// manifests and manifest lists under the table's location, each with a
// fresh name, then commit through the REST catalog, which checks every
// file the commit names (catalog's checkReferences); they need nothing
// else. Deletes are refused because any file may be named by another
// branch, a tag or an older commit; a failed writer's files stay as
// orphans. The REST catalog vends write for a branch the identity may
// write (RepoAccess with write=true), read for a data tag, a commit or an
// identity that may only read. Credentials live DefaultTTL (1 h; weir
// serve --s3-credential-ttl) to 1.25 of it: the expiry is rounded up to a
// quarter of the TTL, so loads within one quarter get the same
// credentials (and the REST catalog's ETag holds). They cannot be revoked earlier except by
// replacing the secret file, which revokes all of them.
//
// # Keys and limits
//
// A key is the request path after /weir/, percent-decoded once (as S3
// does), then resolved as the location s3://weir/<key> by the catalog's
// canonicaliser: "..", ".", empty segments, '%' left after decoding
// (double encoding), '\', control characters and NUL, and keys over
// catalog.MaxLocationLen are InvalidArgument; a key outside the grant's
// prefix is AccessDenied; a symlink out of the folder is AccessDenied
// (os.Root). Bodies: MaxObjectBytes per PUT or part, MaxParts parts,
// streamed to the staging folder (<data>/s3-staging, 0700) and checked
// against X-Amz-Content-Sha256 and Content-MD5 before a hard link (or a
// copy then a link) makes the file appear whole, never replacing one.
// Uploads left in staging over a day are removed at start.
package s3
