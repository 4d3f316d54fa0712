// Package gitserver owns the Git wire protocol sessions: upload-pack
// (protocol v0, v1 and v2: clone and fetch, with negotiation, shallow by
// depth, date and ref (deepen, deepen-since, deepen-not, deepen-relative:
// deepen.go), partial clone filters (blob:none, blob:limit, tree:<depth>:
// filter.go), side-band progress, and deltas: those kept from pushed packs
// (most are the objects' stored form, objects/chain.go) and those it computes, recorded so a repeated clone reuses them:
// delta.go; after a push lands, Server.RunDeltaWorker computes them in
// the background, so the first clone does not: deltabg.go), clone plans
// kept per set of wants, extended after a push by the new commits only and
// filtered for partial clones instead of walking every tree again (git's
// bitmaps' part: plancache.go), receive-pack (push, with
// report-status, side-band-64k, atomic and push options) and, over SSH
// only, upload-archive (git archive --remote: tar, zip, tgz, with
// .gitattributes export-ignore: archive.go). It speaks
// the protocol itself,
// from go-git's plumbing types, over any byte stream; the transports (SSH,
// smart HTTP) hand it a Session and the client's streams.
//
// A push is decided here in this order: the pack goes into an
// objects.Quarantine and is checked; each command is checked (ref name,
// permission, old value, protection); the hooks.PreReceive sees the
// commands that stand; one refs.Store.Update moves every accepted ref, and
// the hook's own updates, together with the quarantined objects. Nothing of
// a refused push becomes visible. A merge request (refs/merge/<b>: the
// merge queue) is authorized as a push to refs/heads/<b> and lands only as
// the hook says (hooks.Result.Lands); refs/merge/<b> itself is never
// written, and without a hook that lands it the request is refused.
//
// What a client sends is bounded before it is kept: a push's command list
// and push options (ReceiveLimits: refused as a whole past MaxCommands or
// MaxCommandBytes, the answer naming no more refs than the limit allows),
// its pack (objects.Limits), and an upload-pack request's lines. At most
// ReceiveLimits.MaxConcurrent pushes receive and check a pack at once; the
// next wait their turn, up to QueueTimeout, and are then refused with
// "server busy: too many pushes in progress, try again". A request that is
// not well-formed (pkt-lines, protocol) gets an HTTP 400 when nothing was
// answered yet, and a stateless request is read whole before it is
// answered.
//
// In the database it owns the keys that start with 'g' (packages objects,
// refs and catalog own theirs):
//
//	'g' <repo> 0x00 "searched"                <commit hash:20>*   tips the background delta search covered (deltabg.go)
//	'g' <repo> 0x00 "plan" 0x00 <chunk:4 BE>  the last default clone's plan, for after a restart (plankeep.go)
//
// It must never move a ref except through that one refs.Store.Update per
// push, never make a quarantined object readable, and never send an object
// that no ref reaches ("not our ref"): a want of a tree or blob (a partial
// clone's lazy fetch) is checked against the objects the advertised refs
// reach (reach.go), and an archive is made only of a ref's tree. Errors reach the client in exactly
// one place per protocol: "ERR" pkt-lines and side band 3 in upload-pack,
// "ng <ref> <reason>" in receive-pack's report-status.
package gitserver
