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
