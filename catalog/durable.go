package catalog

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Durability of warehouse files.
//
// A data ref update is a synced kv write, so the commit it publishes
// survives a power cut; the warehouse files that commit names must too
// (invariant 2). S3 acknowledges a PUT only once it is durable. A local
// warehouse's files may sit in the page cache, so:
//
//   - WriteDataCommit (pipelines, import), which writes many files through
//     iceberg-go, syncs the warehouse's filesystem once before it returns
//     the commit for publishing;
//   - the committer (REST writes) fsyncs the files the server itself
//     wrote (metadata, rebased manifest lists) and their folder. The data
//     files and manifests an Iceberg client writes are the client's to
//     make durable, as with any Iceberg catalog.
//
// The committer's syncs are off its serial path as far as they can be: a
// rebased manifest list's sync starts in the background as soon as the
// list is written (startSync), while the leader applies the rest of the
// batch; the batch's metadata files are synced together, concurrently
// (concurrent fsyncs on one filesystem share its journal commits and
// cache flushes), beside the batch's object writes; and the ref update
// that publishes the batch waits for every one of them (waitAll). A
// sync that fails fails the batch, and nothing is published.

// syncer is a warehouse whose writes need an explicit sync to be durable.
type syncer interface {
	Sync(ctx context.Context) error
}

// Sync flushes the filesystem holding the warehouse to stable storage
// (syncfs(2)): one call for every file written so far, however many.
func (w *LocalWarehouse) Sync(context.Context) error {
	f, err := os.Open(w.dir)
	if err != nil {
		return fmt.Errorf("catalog: sync warehouse: %w", err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("catalog: sync warehouse %s: %w", w.dir, err)
	}
	return nil
}

// syncWarehouse makes the files written so far durable, where the
// warehouse needs it.
func (c *Catalog) syncWarehouse(ctx context.Context) error {
	if s, ok := c.wh.(syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// fileSync is one warehouse file's sync, started in the background by
// startSync; wait returns its outcome.
type fileSync struct {
	done chan struct{}
	err  error
}

// syncSlots bounds the warehouse syncs in flight at once, across every
// batch of the process.
var syncSlots = make(chan struct{}, 64)

// startSync starts syncing the file at loc in a (a.SyncFile) and returns
// at once. The sync is not cancelled with ctx: a writer that goes away
// must not fail the batch its write rides in.
func startSync(ctx context.Context, a Area, loc string) *fileSync {
	ctx = context.WithoutCancel(ctx)
	s := &fileSync{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		syncSlots <- struct{}{}
		defer func() { <-syncSlots }()
		s.err = a.SyncFile(ctx, loc)
	}()
	return s
}

// wait returns the sync's outcome once it has ended.
func (s *fileSync) wait() error {
	<-s.done
	return s.err
}

// waitAll waits for every sync in syncs and returns the first error of
// any.
func waitAll(syncs []*fileSync) error {
	var first error
	for _, s := range syncs {
		if err := s.wait(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
