package objects_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/objects/objectstest"
)

func TestConformance(t *testing.T) {
	objectstest.Run(t, func(t *testing.T) *objects.Store {
		db, err := objects.OpenFS("", vfs.NewMem())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return objects.New(db, objects.Limits{})
	})
}

func TestConformanceOnDisk(t *testing.T) {
	objectstest.Run(t, func(t *testing.T) *objects.Store {
		db, err := objects.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return objects.New(db, objects.Limits{})
	})
}
