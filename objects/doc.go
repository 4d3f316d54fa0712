// Package objects owns Git objects in a kv database: storing and reading them per
// repo, ingesting received packs into a quarantine that no reader sees, and
// checking what a push brings (fsck) before anything becomes reachable.
//
// It must never move a ref (package refs does that) and never make a
// quarantined object visible except through the batch that also moves refs.
//
// One kv database (kv/pebblekv in the server, kv/memkv in tests) holds
// every repo's objects and refs; this package names no driver. It owns the
// keys that start with 'o', 'd', 's' and 'S'; package refs owns 'r' and 'l',
// package catalog 'w', package gitserver 'g'.
//
//	key                                   value
//	'o' <repo> 0x00 <hash:20>             <type:1> <size:uvarint> <zlib deflate of the content>
//	                                      or, spilled: <0x80|type:1> <size:uvarint> <spill:8> <off:uvarint> <zlen:uvarint>
//	                                      or a delta value (chain.go): <0x40|type:1> <size:uvarint> <depth:1> <base:20>
//	                                      <dsize:uvarint> <zlib of the delta instructions>, spilled as above with 0xc0
//	's' <repo> 0x00 <spill:8> <chunk:4>   64 KiB of a spill: zlib streams of a push's objects, back to back
//	'S' <spill:8>                         <repo>: a spill whose quarantine has not committed
//	'd' <repo> 0x00 <hash:20>             <base:20> <size:uvarint> <zlib of delta instructions>, or empty
//	                                      (a delta upload-pack may send instead of the object; delta.go)
//
// The value is the body of a non-delta pack entry (or points at it in a
// spill), so upload-pack streams it into a pack without inflating or
// recompressing it; a delta record, and a delta value's delta, is the body
// of a delta entry, sent the same way. A delta value is a pushed delta
// kept as it came (C git keeps its received packs the same way): readers
// resolve its chain, at most 50 deep, through a cache of resolved bases,
// and garbage collection keeps its base. Stores written before delta
// values existed hold none; they read as they did (no migration). The
// other way does not hold: a build older than delta values reads one as a
// corrupt object, so a data dir a newer server wrote must not be served by
// an older one (restore a backup taken before the upgrade instead).
//
// The hash is the last 20 bytes of the key and repo names never contain
// 0x00, so one repo's objects are the key range ['o' repo 0x00, 'o' repo
// 0x01), and its spills ['s' repo 0x00, 's' repo 0x01). Type is the pack
// type number (1 commit, 2 tree, 3 blob, 4 tag); size is the inflated
// size. A pushed non-delta entry is stored with its original zlib bytes,
// a small pushed delta as its delta value; a larger resolved delta, one
// past the depth limit, or a Put is deflated at the fastest level
// (klauspost/compress's zlib, a drop-in for compress/zlib several times
// faster on small objects; objects are read with it too).
//
// A Quarantine is a kv batch layered over the database: objects ingested
// into it are readable through the quarantine (so pre-receive hooks can
// walk them) and invisible to everyone else. refs.Store commits it together
// with the ref updates in one synced write (Quarantine.CommitWith, which
// hands refs the batch only as a kv.Writer, to add writes to, under the
// quarantine's own lock; reads, the commit and Close stay with the
// quarantine), or it is closed and dropped; it never touches the WAL
// before that commit, so after a crash nothing of it remains. Only its first 16 MiB of values
// live in the batch: the rest of a large push is spilled (spill.go), written
// to the database as it arrives, under keys nothing points at until the
// batch, holding the pointers, commits. A spill's 'S' marker goes in that
// same commit; a quarantine closed without committing deletes its spills,
// and Open deletes those a crash left behind (their marker is still there;
// New does not look, so it is for fresh databases).
//
// Pack ingestion reads the pack once, from the wire, and keeps no entry
// whole: non-delta entries are hashed while they are inflated and stored as
// they arrive; deltas are kept compressed and their declared result size
// checked (MaxObjectBytes, MaxInflatedBytes) before anything is built from
// them; then deltas are resolved base by base, on up to four goroutines
// (the pack's bases first, then each level of their children), each
// result hashed and, when it and its base are small (1 MiB or less), its
// chain of delta values shallower than 50 and the object not already
// held, stored as the delta it came as (a delta value); otherwise deflated
// into its stored value, and its delta, if smaller, kept as that object's
// delta record, for upload-pack to send as it came. Its memory is bounded by Limits and a fixed budget
// (pack.go), not by the pack: a delta bomb is refused from its header, a
// pack over MaxPackBytes at the byte that crosses it, and a fan or a chain
// of deltas holds one base and a small cache. A refused pack leaves no
// trace: its batch and spills are dropped.
//
// Check is git's fsck as receive.fsckObjects runs it in strict mode (its
// warnings are errors), with git's message ids, plus connectivity from the
// pushed tips down to objects already in the repo. That includes the blobs
// pushed trees name .gitmodules or .gitattributes (under any name a
// case-insensitive, HFS+ or NTFS checkout reads as such), checked wherever
// they are, in the pack or already in the repo: a submodule URL or path
// that a client would take for an option, a name that climbs out of
// .git/modules, an update command, an over-long .gitattributes line.
// .gitmodules is read with this package's own reader of git's config
// syntax (gitconfig.go), both as git fsck reads a blob and as a checkout
// reads the file, since the two disagree (a byte order mark, a 0xff byte).
//
// Garbage collection (gc.go; package gc drives it) deletes unreachable
// objects while pushes and the catalog write: every write that makes
// objects visible holds the store's write barrier shared and, while a
// collection is open, records what it wrote; Put remembers when; a sweep
// holds the barrier exclusively and deletes in one synced batch, so every
// surviving object keeps everything it names. Once a sweep has deleted
// objects, a quarantine's commit checks that its tips, and what its
// objects name, are still there (ErrCollected), and refs checks that every
// new ref value exists.
//
// MergeTrees (merge.go) is the merge queue's three-way merge of trees: it
// reads trees from a quarantine and writes the merged ones into it, entry
// by entry (a path changed on both sides differently is a conflict; file
// contents are never merged line by line).
package objects
