package objects_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/objects/objectstest"
)

// store returns a Store over db, closed when the test ends.
func store(t *testing.T, db kv.DB, err error) *objects.Store {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := objects.Open(db, objects.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	objectstest.Run(t, func(t *testing.T) *objects.Store {
		db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
		return store(t, db, err)
	})
}

func TestConformanceOnDisk(t *testing.T) {
	objectstest.Run(t, func(t *testing.T) *objects.Store {
		db, err := pebblekv.Open(t.TempDir(), nil)
		return store(t, db, err)
	})
}

// The same suite against the in-memory driver: the objects contract does
// not depend on Pebble.
func TestConformanceMemKV(t *testing.T) {
	objectstest.Run(t, func(t *testing.T) *objects.Store {
		return store(t, memkv.New(), nil)
	})
}
