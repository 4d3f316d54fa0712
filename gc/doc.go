// Package gc owns garbage collection: expiring run refs and reflog entries
// past their retention, deleting the objects no ref reaches, and deleting
// the warehouse files no kept table pointer names. `weir gc` runs it on a
// stopped server; `weir serve` runs it every --gc-every.
//
// It must never delete anything reachable: an object any ref or
// unexpired reflog entry reaches (heads, tags, data refs, runs, any
// namespace: every ref refs lists is a root, none is hard-coded), a delta
// record whose object and base are both kept, or a warehouse file that a
// kept table pointer's Iceberg metadata names. It moves no ref but the run
// refs it expires, and those only by compare-and-swap.
//
// # One collection
//
//	expire    per repo: runs past --keep-failed-runs / --keep-runs (all of
//	          refs/runs/<id>/, one compare-and-swap, then their reflogs);
//	          reflog entries older than --reflog-expiry (a ref's newest
//	          entry stays while the ref exists)
//	mark      objects.BeginCollection; from every ref and every reflog
//	          entry's old and new value, follow every link (commit: tree,
//	          parents; tree: entries, gitlinks too; tag: target)
//	list      every object of the repo not marked: the candidates
//	sweep     under the store's write barrier (no object is written and no
//	          ref moves meanwhile): mark again from the refs and reflogs,
//	          the objects written since the collection began (touched) and
//	          those Put within --gc-grace (recent); delete the candidates
//	          still unmarked, the delta records of them or based on them,
//	          the spills no survivor points into and the catalog's records
//	          of the deleted blobs, in one synced batch
//	files     the table pointers that survive (in the trees of kept
//	          commits, and the catalog's own records of the pointers it
//	          wrote) name metadata files; their metadata names every
//	          snapshot's manifest list, manifests, data and delete files,
//	          statistics and previous metadata files. Every other file of
//	          the repo's part of the warehouse older than --gc-grace is
//	          deleted; a younger metadata file or manifest list is read
//	          too, and what it names is kept
//
// # Why a push racing a collection loses nothing
//
// Objects reach the database three ways: a push's quarantine commits with
// the refs that reach its objects; the catalog Puts a data commit's
// objects and later moves a ref to them (a REST commit at once, a run when
// it ends); upload-pack records deltas. objects/gc.go draws the store's
// side: every one of those writes holds the write barrier shared and,
// while a collection is open, records what it wrote; Put remembers when.
// So at the sweep, under the barrier:
//
//   - an object written after the candidates were listed is not a
//     candidate; one written before, and written again since (a Put of
//     the same content), is touched and kept with what it names;
//   - a run's or a REST commit's objects written before the collection
//     began but not yet reachable are younger than --gc-grace (runs must
//     end within it: weir serve warns when --gc-grace is shorter than
//     --node-timeout, and defers a periodic collection while a run has
//     been running for more than half of it) and kept as recent;
//   - a ref that moved during marking is marked again at the sweep, and
//     no ref moves during the sweep;
//   - a push whose quarantine was open during a sweep that deleted
//     something checks, when it commits, that everything its objects
//     name is still there (ErrCollected, and the client pushes again),
//     and every ref update checks that its new values exist.
//
// The sweep's batch is atomic, so a crash during a collection leaves every
// object or none of it deleted; run refs are expired by one
// compare-and-swap each, before anything is deleted; warehouse files are
// deleted last, each only once no surviving pointer names it, so a crash
// between two deletions leaves files that are garbage, never a pointer
// without its files.
//
// # Warehouse files and their age
//
// A file's age is the later of its modification and status change time
// (a Parquet file hard-linked into the warehouse by weir import or a run
// is as young as the link) locally, and its LastModified on S3. Files a
// REST client writes before it commits are younger than the grace period
// until the commit names them. The warehouse is reached only through each
// repo's catalog.Area (an os.Root locally, a key prefix on S3).
package gc
