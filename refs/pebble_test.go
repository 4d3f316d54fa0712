package refs_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
	"github.com/weir-dev/weir/refs/refstest"
)

func newMemStore(t *testing.T) (refs.Store, *objects.Store) {
	t.Helper()
	db, err := objects.OpenFS("", vfs.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	o := objects.New(db, objects.Limits{})
	return refs.NewDB(o), o
}

func TestConformance(t *testing.T) {
	refstest.Run(t, newMemStore)
}

// The suite also runs on a real on-disk database, where pebble.Sync is a
// real fsync.
func TestConformanceOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("on-disk run skipped in -short mode")
	}
	refstest.Run(t, func(t *testing.T) (refs.Store, *objects.Store) {
		db, err := objects.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		o := objects.New(db, objects.Limits{})
		return refs.NewDB(o), o
	})
}
