package refs_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
	"github.com/weir-dev/weir/refs/refstest"
)

// stores returns the ref store and the objects store over db, closed when
// the test ends.
func stores(t *testing.T, db kv.DB, err error) (refs.Store, *objects.Store) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	o, err := objects.Open(db, objects.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return refs.NewDB(o), o
}

func newMemStore(t *testing.T) (refs.Store, *objects.Store) {
	t.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	return stores(t, db, err)
}

func TestConformance(t *testing.T) {
	refstest.Run(t, newMemStore)
}

// The suite also runs on a real on-disk database, where kv.Sync is a real
// fsync.
func TestConformanceOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("on-disk run skipped in -short mode")
	}
	refstest.Run(t, func(t *testing.T) (refs.Store, *objects.Store) {
		db, err := pebblekv.Open(t.TempDir(), nil)
		return stores(t, db, err)
	})
}

// And on the in-memory driver: the refs contract does not depend on
// Pebble.
func TestConformanceMemKV(t *testing.T) {
	refstest.Run(t, func(t *testing.T) (refs.Store, *objects.Store) {
		return stores(t, memkv.New(), nil)
	})
}
