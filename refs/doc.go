// Package refs owns refs in Pebble: reading them, moving many of them at once
// from stated old values to new values (compare-and-swap, all or nothing,
// durable on return), symbolic HEAD, and a reflog per ref.
//
// It must never write objects itself; it only commits an objects.Quarantine's
// batch together with the ref updates that make its objects reachable.
//
// Keys (package objects owns 'o'):
//
//	'r' <repo> 0x00 <refname>                 <hash:20>  or  "ref: " <target>   (symbolic)
//	'l' <repo> 0x00 <refname> 0x00 <seq:8 BE> <old:20> <new:20> <unix-nanos:8 BE> <message>
//
// Concurrency: Update locks the named refs (in sorted order), checks every
// old value, writes the batch with pebble.Sync and unlocks. Updates to
// distinct refs proceed in parallel and share fsyncs through Pebble's commit
// pipeline (group commit).
package refs
