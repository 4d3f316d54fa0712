package gitserver

import (
	"context"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
)

// TestDeltaSearchStopsWithinWindow: a search whose context is cancelled
// stops before its next comparison, not after the next 64 objects (a
// server stopping under load waited minutes on a window of 1 MiB blobs,
// TestCrashDuringPush).
func TestDeltaSearchStopsWithinWindow(t *testing.T) {
	ctx := context.Background()
	store := objects.New(memkv.New(), objects.Limits{})
	repo := objects.RepoName("stop")
	rng := rand.New(rand.NewSource(1))
	base := make([]byte, 64<<10)
	rng.Read(base)
	var part []searchCand
	for i := range 20 {
		data := append([]byte(nil), base...)
		data[i*100] ^= 0xff // each a small edit of the others: deltas exist
		h, err := store.Put(ctx, repo, plumbing.BlobObject, data)
		if err != nil {
			t.Fatal(err)
		}
		part = append(part, searchCand{idx: int32(i), h: h, typ: plumbing.BlobObject, size: int64(len(data))})
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &deltaSearcher{ctx: sctx, store: store, repo: repo}
	reported := 0
	err := s.run(part, time.Now().Add(time.Hour), func(c searchCand, d objects.Delta, ok bool) {
		reported++
		if reported == 2 {
			cancel() // the server stops while the third object is searched
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled", err)
	}
	if reported != 2 {
		t.Fatalf("run decided %d objects after its context was cancelled at the second; want it to stop at the next comparison", reported)
	}
}
