// Package objects owns Git objects in Pebble: storing and reading them per
// repo, ingesting received packs into a quarantine that no reader sees, and
// checking what a push brings (fsck) before anything becomes reachable.
//
// It must never move a ref (package refs does that) and never make a
// quarantined object visible except through the batch that also moves refs.
//
// One Pebble database holds every repo's objects and refs. This package owns
// the keys that start with 'o'; package refs owns 'r' and 'l'.
//
//	key                                   value
//	'o' <repo> 0x00 <hash:20>             <type:1> <size:uvarint> <zlib deflate of the content>
//
// The value is the body of a non-delta pack entry, so upload-pack streams
// it into a pack without inflating or recompressing it.
//
// A Quarantine is an indexed Pebble batch layered over the database: objects
// ingested into it are readable through the quarantine (so pre-receive hooks
// can walk them) and invisible to everyone else. refs.Store commits it
// together with the ref updates in one synced write, or it is closed and
// dropped; after a crash nothing of it remains.
package objects
