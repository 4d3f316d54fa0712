// Package refs owns refs in a kv database: reading them, moving many of them at once
// from stated old values to new values (compare-and-swap, all or nothing,
// durable on return), symbolic HEAD, and a reflog per ref.
//
// It must never write objects itself; it only adds the ref updates that
// make a push's objects reachable to that push's quarantine (the small
// Quarantine interface, implemented by *objects.Quarantine), which commits
// both in one synced write. It names no kv driver: DB runs on kv/pebblekv
// in the server and on kv/memkv in tests, and the conformance suite
// (refstest) and the crash test run on both.
//
// Keys (package objects owns 'o'):
//
//	'r' <repo> 0x00 <refname>                 <hash:20>  or  "ref: " <target>   (symbolic)
//	'l' <repo> 0x00 <refname> 0x00 <seq:8 BE> <old:20> <new:20> <unix-nanos:8 BE> <message>
//
// Ref names never contain 0x00 (CheckName), so one ref's reflog is the key
// range ['l' repo 0x00 name 0x00, 'l' repo 0x00 name 0x01) in sequence
// order. A deletion removes the 'r' key and appends a reflog entry with
// new = zero; the reflog outlives the ref.
//
// Concurrency: every ref maps to one of 1024 lock stripes by a hash of
// (repo, name). Update locks the stripes of all its refs in ascending
// stripe order (no deadlock between updates), checks every old value
// against the database, writes refs and reflog entries into one batch (the
// quarantine's batch when there is one), commits it with kv.Sync and
// unlocks. Updates to distinct refs proceed in parallel and, on Pebble,
// share fsyncs through its commit pipeline (group commit). Reads take no
// locks.
//
// Garbage collection: Update holds the objects store's write barrier
// (objects.Store.HoldWrites, or the quarantine's commit) while it commits,
// so no ref moves in the middle of a sweep, and once a sweep has deleted
// objects in this process it refuses a new value that no longer exists.
// Reflog entries expire only through ExpireReflog (expire.go), under the
// ref's stripe; the newest entry of an existing ref stays.
//
// Durability: Update returns nil only after its batch is synced to the WAL;
// a crash at any instant leaves each batch either fully applied or absent,
// so a code ref and a data ref moved together are always seen together.
package refs
