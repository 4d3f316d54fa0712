package memkv_test

import (
	"math/rand/v2"
	"testing"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/kvtest"
	"github.com/weir-dev/weir/kv/memkv"
)

func TestConformance(t *testing.T) {
	kvtest.Run(t, kvtest.Driver{
		Open: func(t *testing.T) kv.DB { return memkv.New() },
		Crash: func(t *testing.T, db kv.DB, rng *rand.Rand) kv.DB {
			return db.(*memkv.DB).CrashClone(rng)
		},
	})
}
