// Package hooks owns what happens between receiving a push and moving its
// refs: the pre-receive decision. gitserver calls a PreReceive with the ref
// commands and the quarantined objects; the pipeline hook plans the pushed
// pipeline, runs it in sandboxes (package exec) on a temporary data branch
// (package catalog) and decides.
//
// It must never move a ref itself: it returns the extra ref updates (data
// refs, run refs) and gitserver commits them with the push in one write.
package hooks
