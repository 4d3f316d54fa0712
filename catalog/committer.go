package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Group commit of catalog writes.
//
// Every catalog write to a branch (a table commit, a transaction, a
// namespace change) is a mutation of the branch's data state published by
// a compare-and-swap of refs/data/<b>. Writers of one branch in this
// process queue on the branch's committer: the first becomes the leader,
// takes every queued mutation, applies them in arrival order to one state
// (each sees the ones before it; one that fails is refused alone and
// changes nothing) and publishes them all as one data commit with one
// synced ref update. So concurrent writers never lose the CAS to each
// other, and one WAL fsync serves the whole batch; the warehouse files
// the batch wrote are synced concurrently before it (durable.go). The CAS still guards
// against writers outside this process and against pushes, which move
// data refs without the committer: on a stale ref the batch is applied
// again on the new head.

// mutation changes st, all or nothing: it returns an error before touching
// st, or changes it and says what it did. attempt > 0 means earlier
// attempts were applied to a head that has since moved; st is then a fresh
// state. An empty subject is a no-op.
type mutation func(st *dataState, attempt int) (subject string, changes []string, err error)

type pending struct {
	mutate   mutation
	identity string
	done     chan struct{}
	next     objects.Hash
	final    *dataState
	err      error
}

type committer struct {
	mu      sync.Mutex
	queue   []*pending
	leading bool
}

// committerFor returns the committer of one data ref.
func (c *Catalog) committerFor(repo objects.RepoName, ref refs.Name) *committer {
	k := string(repo) + "\x00" + string(ref)
	if cm, ok := c.committers.Load(k); ok {
		return cm.(*committer)
	}
	cm, _ := c.committers.LoadOrStore(k, new(committer))
	return cm.(*committer)
}

// advance applies mutate to the branch head and publishes it, batched with
// whatever other writes of the branch are queued. It returns the data
// commit that holds the change (the unchanged head when it was a no-op).
func (ic *IcebergCatalog) advance(ctx context.Context, mutate mutation) (objects.Hash, error) {
	next, _, err := ic.advanceState(ctx, mutate)
	return next, err
}

// advanceState is advance that also returns the state as committed (nil
// on error), where a table's staged metadata includes the writes batched
// after this one.
func (ic *IcebergCatalog) advanceState(ctx context.Context, mutate mutation) (objects.Hash, *dataState, error) {
	if ic.ref == "" {
		return objects.ZeroHash, nil, fmt.Errorf("%w: %q of %s; write to a branch", ErrReadOnly, ic.rev, ic.repo)
	}
	cm := ic.c.committerFor(ic.repo, ic.ref)
	p := &pending{mutate: mutate, identity: ic.identity, done: make(chan struct{})}
	cm.mu.Lock()
	cm.queue = append(cm.queue, p)
	lead := !cm.leading
	if lead {
		cm.leading = true
	}
	cm.mu.Unlock()
	if lead {
		// The leader runs apart from any one writer, under no writer's
		// deadline: a client going away cannot fail the others, and no
		// writer waits for batches after its own.
		go ic.lead(context.WithoutCancel(ctx), cm)
	}
	select {
	case <-p.done:
		return p.next, p.final, p.err
	case <-ctx.Done():
		// The write may still land (it is queued or being published);
		// like a dropped HTTP connection, the caller cannot know.
		return objects.ZeroHash, nil, ctx.Err()
	}
}

// lead publishes queued batches until the queue is empty.
func (ic *IcebergCatalog) lead(ctx context.Context, cm *committer) {
	for {
		cm.mu.Lock()
		batch := cm.queue
		cm.queue = nil
		if len(batch) == 0 {
			cm.leading = false
			cm.mu.Unlock()
			return
		}
		cm.mu.Unlock()
		ic.publish(ctx, batch)
	}
}

// publish applies a batch to the branch head as one data commit, again on
// a fresh head when the CAS loses to a writer outside the committer.
func (ic *IcebergCatalog) publish(ctx context.Context, batch []*pending) {
	finish := func(p *pending, next objects.Hash, err error) {
		p.next, p.err = next, err
		close(p.done)
	}
	run := newRunID()
	live := batch
	for attempt := range maxRetries {
		head, err := ic.Head(ctx)
		if err == nil {
			var st *dataState
			if st, err = ic.c.state(ctx, ic.repo, head); err == nil {
				base := st.clone()
				var applied []*pending
				var subjects, changes []string
				for _, p := range live {
					subject, ch, err := apply(p.mutate, st, attempt)
					switch {
					case err != nil:
						finish(p, objects.ZeroHash, err)
					case subject == "":
						finish(p, head, nil)
					default:
						if p.identity != "" {
							subject += " (by " + p.identity + ")"
						}
						if len(ch) == 0 {
							ch = []string{strings.TrimPrefix(subject, "weir: ")}
						}
						applied = append(applied, p)
						subjects = append(subjects, subject)
						changes = append(changes, ch...)
					}
				}
				if len(applied) == 0 {
					return
				}
				subject := subjects[0]
				if len(applied) > 1 {
					subject = fmt.Sprintf("weir: %d catalog commits", len(applied))
				}
				var next objects.Hash
				next, err = ic.commit(ctx, base, st, head, subject, run, changes)
				if errors.Is(err, refs.ErrStale) {
					ic.c.casRetries.Add(1)
					live = applied
					continue
				}
				for _, p := range applied {
					if err == nil {
						p.final = st
					}
					finish(p, next, err)
				}
				return
			}
		}
		for _, p := range live {
			finish(p, objects.ZeroHash, err)
		}
		return
	}
	for _, p := range live {
		finish(p, objects.ZeroHash, fmt.Errorf("%w: %s moved %d times during the commit", table.ErrCommitFailed, ic.ref, maxRetries))
	}
}

// commit writes st as a data commit on head (whose state is base), marks
// what it publishes, and moves the branch's data ref to it (refs.ErrStale
// when the ref moved).
func (ic *IcebergCatalog) commit(ctx context.Context, base, st *dataState, head objects.Hash, subject, run string, changes []string) (objects.Hash, error) {
	// The last metadata of each table the batch changed; intermediate
	// versions are never written (nothing refers to them). Their syncs run
	// beside the object writes below; the ref update waits for them and
	// for those of the manifest lists the batch rebased (durable.go).
	var syncs []*fileSync
	for t := range st.staged {
		if sm, ok := st.stagedFor(t); ok {
			if err := ic.c.writeMetadataUnsynced(ctx, ic.area, sm.loc, sm.meta); err != nil {
				return objects.ZeroHash, err
			}
			syncs = append(syncs, startSync(ctx, ic.area, sm.loc))
			syncs = append(syncs, sm.syncs...)
		}
	}
	code, err := ic.c.refs.Resolve(ctx, ic.repo, refs.Name(refs.HeadsPrefix+strings.TrimPrefix(string(ic.ref), refs.DataPrefix)))
	if err != nil {
		code = objects.ZeroHash
	}
	if !code.IsZero() {
		st.code = code
	}
	next, err := ic.c.commitState(ctx, ic.repo, st, []objects.Hash{head}, subject, run, code, changes)
	if err != nil {
		return objects.ZeroHash, err
	}
	if err := ic.c.publishDiff(ic.repo, base, st); err != nil {
		return objects.ZeroHash, err
	}
	if err := waitAll(syncs); err != nil {
		return objects.ZeroHash, fmt.Errorf("catalog: sync warehouse files: %w", err)
	}
	if err := ic.c.refs.Update(ctx, ic.repo, []refs.Update{{Name: ic.ref, Old: head, New: next}}, nil, subject); err != nil {
		return objects.ZeroHash, err
	}
	return next, nil
}

// apply runs one mutation; a panic in it fails that write alone (and is
// reported as an error) rather than the committer of the whole branch.
func apply(m mutation, st *dataState, attempt int) (subject string, changes []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			subject, changes, err = "", nil, fmt.Errorf("catalog: internal error applying a write: %v", r)
		}
	}()
	return m(st, attempt)
}
