package pebblekv_test

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/kvtest"
	"github.com/weir-dev/weir/kv/pebblekv"
)

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	fss := map[kv.DB]*vfs.MemFS{}
	kvtest.Run(t, kvtest.Driver{
		Open: func(t *testing.T) kv.DB {
			fs := vfs.NewCrashableMem()
			db, err := pebblekv.OpenFS("db", fs, nil)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			fss[db] = fs
			mu.Unlock()
			return db
		},
		Crash: func(t *testing.T, db kv.DB, rng *rand.Rand) kv.DB {
			mu.Lock()
			fs := fss[db]
			mu.Unlock()
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))})
			cdb, err := pebblekv.OpenFS("db", clone, nil)
			if err != nil {
				t.Fatalf("reopen after a crash: %v", err)
			}
			return cdb
		},
	})
}

func TestConformanceOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("on-disk run skipped in -short mode")
	}
	kvtest.Run(t, kvtest.Driver{Open: func(t *testing.T) kv.DB {
		db, err := pebblekv.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}})
}

// Pebble's own log lines go to the logger handed to Open, at the levels it
// maps them to, and nowhere else.
func TestLoggerHandedDown(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := pebblekv.OpenFS("db", vfs.NewMem(), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), kv.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "component=pebble") {
		t.Fatalf("no Pebble line reached the handed-down logger:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("Pebble logged an error on a clean open and close:\n%s", buf.String())
	}
}
