// Package refstest is the conformance suite every refs.Store
// implementation runs against itself:
//
//	func TestConformance(t *testing.T) { refstest.Run(t, newStore) }
//
// It checks create/update/delete, compare-and-swap failures that name the
// ref and change nothing, all-or-nothing multi-ref updates, quarantine
// visibility, symbolic refs, reflog order, listing, name validation, and
// that concurrent updates of one ref lose nothing.
package refstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Run runs the suite. newStore returns a fresh, empty ref store and the
// object store it shares a database with.
func Run(t *testing.T, newStore func(t *testing.T) (refs.Store, *objects.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s refs.Store, o *objects.Store)
	}{
		{"CreateUpdateDelete", testCreateUpdateDelete},
		{"StaleNamesRefChangesNothing", testStale},
		{"MultiRefAllOrNothing", testMultiRef},
		{"Symbolic", testSymbolic},
		{"ReflogOrder", testReflog},
		{"ListPrefix", testList},
		{"Repos", testRepos},
		{"BadNames", testBadNames},
		{"QuarantineVisibility", testQuarantine},
		{"RaceOneRef", testRace},
		{"ConcurrentDistinctRefs", testDistinct},
		{"OverlappingOrdersNoDeadlock", testOverlap},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, o := newStore(t)
			tc.fn(t, s, o)
		})
	}
}

const repo = objects.RepoName("demo")

// H returns a distinct, non-zero hash for i.
func H(i int) objects.Hash {
	var h objects.Hash
	h[0] = 0xee
	h[16], h[17], h[18], h[19] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return h
}

var zero = objects.ZeroHash

func mustUpdate(t *testing.T, s refs.Store, msg string, us ...refs.Update) {
	t.Helper()
	if err := s.Update(context.Background(), repo, us, nil, msg); err != nil {
		t.Fatalf("update %v: %v", us, err)
	}
}

func wantRef(t *testing.T, s refs.Store, name refs.Name, want objects.Hash) {
	t.Helper()
	got, err := s.Resolve(context.Background(), repo, name)
	if want == zero {
		if !errors.Is(err, refs.ErrNotFound) {
			t.Fatalf("%s: want absent, got %s, %v", name, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("%s = %s, %v; want %s", name, got, err, want)
	}
}

func testCreateUpdateDelete(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	const main = refs.Name("refs/heads/main")
	wantRef(t, s, main, zero)
	mustUpdate(t, s, "create", refs.Update{Name: main, Old: zero, New: H(1)})
	wantRef(t, s, main, H(1))
	r, err := s.Get(ctx, repo, main)
	if err != nil || r.Hash != H(1) || r.Target != "" || r.Name != main {
		t.Fatalf("Get = %+v, %v", r, err)
	}
	mustUpdate(t, s, "update", refs.Update{Name: main, Old: H(1), New: H(2)})
	wantRef(t, s, main, H(2))
	mustUpdate(t, s, "delete", refs.Update{Name: main, Old: H(2), New: zero})
	wantRef(t, s, main, zero)
	if _, err := s.Get(ctx, repo, main); !errors.Is(err, refs.ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	// Recreate after delete.
	mustUpdate(t, s, "recreate", refs.Update{Name: main, Old: zero, New: H(3)})
	wantRef(t, s, main, H(3))
	// Another repo is untouched.
	if _, err := s.Get(ctx, "other", main); !errors.Is(err, refs.ErrNotFound) {
		t.Fatalf("other repo sees the ref: %v", err)
	}
}

func testStale(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	const main = refs.Name("refs/heads/main")
	mustUpdate(t, s, "create", refs.Update{Name: main, Old: zero, New: H(1)})
	cases := []struct {
		name      string
		u         refs.Update
		actual    objects.Hash
		refBefore refs.Name
	}{
		{"create existing", refs.Update{Name: main, Old: zero, New: H(5)}, H(1), main},
		{"wrong old", refs.Update{Name: main, Old: H(9), New: H(5)}, H(1), main},
		{"delete with wrong old", refs.Update{Name: main, Old: H(9), New: zero}, H(1), main},
		{"update absent", refs.Update{Name: "refs/heads/nope", Old: H(1), New: H(5)}, zero, "refs/heads/nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, repo, []refs.Update{tc.u}, nil, "stale")
			var se *refs.StaleError
			if !errors.As(err, &se) || !errors.Is(err, refs.ErrStale) {
				t.Fatalf("want *StaleError, got %v", err)
			}
			if se.Name != tc.u.Name || se.Expected != tc.u.Old || se.Actual != tc.actual {
				t.Fatalf("StaleError %+v", se)
			}
			if !strings.Contains(err.Error(), string(tc.u.Name)) {
				t.Fatalf("error %q does not name the ref", err)
			}
		})
	}
	wantRef(t, s, main, H(1))
	wantRef(t, s, "refs/heads/nope", zero)
	if log, _ := s.Reflog(ctx, repo, main); len(log) != 1 {
		t.Fatalf("failed updates wrote reflog entries: %d", len(log))
	}
}

func testMultiRef(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	const code, data = refs.Name("refs/heads/main"), refs.Name("refs/data/main")
	mustUpdate(t, s, "both", refs.Update{Name: code, Old: zero, New: H(1)}, refs.Update{Name: data, Old: zero, New: H(2)})
	wantRef(t, s, code, H(1))
	wantRef(t, s, data, H(2))
	// The second ref is stale: neither moves.
	err := s.Update(ctx, repo, []refs.Update{
		{Name: code, Old: H(1), New: H(3)},
		{Name: data, Old: H(99), New: H(4)},
		{Name: "refs/heads/new", Old: zero, New: H(5)},
	}, nil, "half")
	var se *refs.StaleError
	if !errors.As(err, &se) || se.Name != data {
		t.Fatalf("want StaleError for %s, got %v", data, err)
	}
	wantRef(t, s, code, H(1))
	wantRef(t, s, data, H(2))
	wantRef(t, s, "refs/heads/new", zero)
	// Both move together.
	mustUpdate(t, s, "advance", refs.Update{Name: code, Old: H(1), New: H(3)}, refs.Update{Name: data, Old: H(2), New: H(4)})
	wantRef(t, s, code, H(3))
	wantRef(t, s, data, H(4))
	// Naming a ref twice is refused.
	err = s.Update(ctx, repo, []refs.Update{{Name: code, Old: H(3), New: H(5)}, {Name: code, Old: H(3), New: H(6)}}, nil, "dup")
	if err == nil {
		t.Fatal("update naming a ref twice succeeded")
	}
	wantRef(t, s, code, H(3))
}

func testSymbolic(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	if err := s.SetSymbolic(ctx, repo, refs.HEAD, "refs/heads/main"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, repo, refs.HEAD)
	if err != nil || r.Target != "refs/heads/main" || !r.Hash.IsZero() {
		t.Fatalf("Get HEAD = %+v, %v", r, err)
	}
	// Unborn branch.
	if _, err := s.Resolve(ctx, repo, refs.HEAD); !errors.Is(err, refs.ErrNotFound) {
		t.Fatalf("Resolve of unborn HEAD: %v", err)
	}
	mustUpdate(t, s, "create", refs.Update{Name: "refs/heads/main", Old: zero, New: H(1)})
	wantRef(t, s, refs.HEAD, H(1))
	if err := s.SetSymbolic(ctx, repo, refs.HEAD, "refs/heads/dev"); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, "create", refs.Update{Name: "refs/heads/dev", Old: zero, New: H(2)})
	wantRef(t, s, refs.HEAD, H(2))
	if err := s.SetSymbolic(ctx, repo, refs.HEAD, "bad name"); !errors.Is(err, refs.ErrBadName) {
		t.Fatalf("SetSymbolic to a bad name: %v", err)
	}
	list, err := s.List(ctx, repo, "")
	if err != nil || len(list) != 3 || list[0].Name != refs.HEAD || list[0].Target != "refs/heads/dev" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func testReflog(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	const main = refs.Name("refs/heads/main")
	prev := zero
	for i := 1; i <= 20; i++ {
		mustUpdate(t, s, fmt.Sprintf("push %d", i), refs.Update{Name: main, Old: prev, New: H(i)})
		prev = H(i)
	}
	mustUpdate(t, s, "delete", refs.Update{Name: main, Old: prev, New: zero})
	log, err := s.Reflog(ctx, repo, main)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 21 {
		t.Fatalf("reflog has %d entries, want 21", len(log))
	}
	prev = zero
	for i, e := range log[:20] {
		if e.Old != prev || e.New != H(i+1) || e.Message != fmt.Sprintf("push %d", i+1) || e.UnixNano == 0 {
			t.Fatalf("entry %d = %+v", i, e)
		}
		if i > 0 && e.UnixNano < log[i-1].UnixNano {
			t.Fatalf("entry %d goes back in time", i)
		}
		prev = e.New
	}
	if last := log[20]; last.Old != H(20) || last.New != zero || last.Message != "delete" {
		t.Fatalf("delete entry = %+v", last)
	}
	// A ref whose name is a prefix of another has its own log.
	mustUpdate(t, s, "other", refs.Update{Name: main + "-2", Old: zero, New: H(1)})
	if log, _ := s.Reflog(ctx, repo, main); len(log) != 21 {
		t.Fatalf("reflog picked up another ref's entries: %d", len(log))
	}
}

func testList(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	names := []refs.Name{"refs/heads/main", "refs/heads/dev", "refs/heads/feature/x", "refs/tags/v1", "refs/data/main", "refs/heads-not/x"}
	for i, n := range names {
		mustUpdate(t, s, "create", refs.Update{Name: n, Old: zero, New: H(i + 1)})
	}
	mustUpdate(t, s, "zzz", refs.Update{Name: "refs/heads/zzz", Old: zero, New: H(1)})
	got, err := s.List(ctx, repo, refs.HeadsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []refs.Ref{
		{Name: "refs/heads/dev", Hash: H(2)},
		{Name: "refs/heads/feature/x", Hash: H(3)},
		{Name: "refs/heads/main", Hash: H(1)},
		{Name: "refs/heads/zzz", Hash: H(1)},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List(heads) =\n%v\nwant\n%v", got, want)
	}
	all, _ := s.List(ctx, repo, "")
	if len(all) != 7 {
		t.Fatalf("List(all) has %d refs, want 7", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Fatalf("List not sorted: %s before %s", all[i-1].Name, all[i].Name)
		}
	}
	if none, err := s.List(ctx, repo, "refs/nothing/"); err != nil || len(none) != 0 {
		t.Fatalf("List(empty prefix) = %v, %v", none, err)
	}
}

func testRepos(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	for _, r := range []objects.RepoName{"b", "a", "team/a", "a.b"} {
		if err := s.Update(ctx, r, []refs.Update{{Name: "refs/heads/main", New: H(1)}, {Name: "refs/heads/x", New: H(2)}}, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Repos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[a a.b b team/a]" {
		t.Fatalf("Repos = %v", got)
	}
}

func testBadNames(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	bad := []refs.Name{"", "main", "heads/main", "refs/", "refs/heads/", "refs/heads//x", "refs/heads/a..b",
		"refs/heads/a@{1}", "refs/heads/a\x01", "refs/heads/a\x7f", "refs/heads/a\\b", "refs/heads/a~1", "refs/heads/a^",
		"refs/heads/a:b", "refs/heads/a?", "refs/heads/a*", "refs/heads/a[", "refs/heads/.hidden", "refs/heads/x.lock",
		"refs/heads/x.lock/y", "refs/heads/x.", "refs/heads/a b", "-refs/heads/x", "refs/heads/-x", "refs/heads/a\x00b"}
	for _, n := range bad {
		err := s.Update(ctx, repo, []refs.Update{{Name: n, Old: zero, New: H(1)}}, nil, "")
		if !errors.Is(err, refs.ErrBadName) || !strings.Contains(err.Error(), fmt.Sprintf("%q", string(n))) {
			t.Errorf("Update(%q): %v; want ErrBadName quoting the name", n, err)
		}
		if _, err := s.Get(ctx, repo, n); !errors.Is(err, refs.ErrBadName) {
			t.Errorf("Get(%q): %v; want ErrBadName", n, err)
		}
	}
	// A bad name in a batch fails the whole batch.
	err := s.Update(ctx, repo, []refs.Update{{Name: "refs/heads/ok", New: H(1)}, {Name: "refs/heads/a..b", New: H(1)}}, nil, "")
	if !errors.Is(err, refs.ErrBadName) {
		t.Fatalf("batch with a bad name: %v", err)
	}
	wantRef(t, s, "refs/heads/ok", zero)
	for _, n := range []refs.Name{"HEAD", "refs/heads/main", "refs/heads/feature/x-1.2_3", "refs/runs/r1/code", "refs/heads/a.b", "refs/heads/@"} {
		if err := s.Update(ctx, repo, []refs.Update{{Name: n, Old: zero, New: H(1)}}, nil, ""); err != nil {
			t.Errorf("Update(%q): %v", n, err)
		}
	}
}

func testQuarantine(t *testing.T, s refs.Store, o *objects.Store) {
	ctx := context.Background()
	q := o.NewQuarantine(repo)
	defer q.Close()
	blob, err := q.Put(plumbing.BlobObject, []byte("pushed\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := o.Has(ctx, repo, blob); ok {
		t.Fatal("quarantined object visible before the ref update")
	}
	// A stale update does not commit the quarantine.
	mustUpdate(t, s, "create", refs.Update{Name: "refs/heads/main", Old: zero, New: H(1)})
	err = s.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", Old: zero, New: blob}}, q, "push")
	if !errors.Is(err, refs.ErrStale) {
		t.Fatalf("stale update with quarantine: %v", err)
	}
	if ok, _ := o.Has(ctx, repo, blob); ok {
		t.Fatal("stale update made quarantined objects visible")
	}
	// A quarantine for another repo is refused.
	q2 := o.NewQuarantine("other")
	defer q2.Close()
	if err := s.Update(ctx, repo, []refs.Update{{Name: "refs/heads/x", New: H(1)}}, q2, ""); err == nil {
		t.Fatal("update accepted a quarantine of another repo")
	}
	if err := s.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", Old: H(1), New: blob}}, q, "push"); err != nil {
		t.Fatal(err)
	}
	got, err := o.Get(ctx, repo, blob)
	if err != nil || string(got.Data) != "pushed\n" {
		t.Fatalf("object after commit: %v", err)
	}
	wantRef(t, s, "refs/heads/main", blob)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := o.Has(ctx, repo, blob); !ok {
		t.Fatal("Close after commit dropped the objects")
	}
}

// testRace: 32 goroutines x 50 rounds on one ref. In each round every
// goroutine tries to move the ref from the round's start value; exactly one
// wins, and the reflog has exactly one entry per win.
func testRace(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	const name = refs.Name("refs/heads/contended")
	const workers, rounds = 32, 50
	mustUpdate(t, s, "start", refs.Update{Name: name, Old: zero, New: H(0)})
	cur := H(0)
	totalWins := 0
	for r := 1; r <= rounds; r++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		var winner objects.Hash
		errs := make(chan error, workers)
		start := make(chan struct{})
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				next := H(r*1000 + w)
				err := s.Update(ctx, repo, []refs.Update{{Name: name, Old: cur, New: next}}, nil, fmt.Sprintf("round %d worker %d", r, w))
				switch {
				case err == nil:
					mu.Lock()
					wins++
					winner = next
					mu.Unlock()
				case errors.Is(err, refs.ErrStale):
				default:
					errs <- err
				}
			}(w)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", r, err)
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners, want 1", r, wins)
		}
		wantRef(t, s, name, winner)
		cur = winner
		totalWins += wins
	}
	log, err := s.Reflog(ctx, repo, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != totalWins+1 {
		t.Fatalf("reflog has %d entries, want %d (one per win plus the creation)", len(log), totalWins+1)
	}
	for i := 1; i < len(log); i++ {
		if log[i].Old != log[i-1].New {
			t.Fatalf("reflog entry %d does not continue from %d: an update was lost", i, i-1)
		}
	}
	if log[len(log)-1].New != cur {
		t.Fatal("reflog does not end at the ref's value")
	}
}

// testDistinct: concurrent updates of distinct refs all succeed.
func testDistinct(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	const workers, rounds = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			code := refs.Name(fmt.Sprintf("refs/heads/b%d", w))
			data := refs.Name(fmt.Sprintf("refs/data/b%d", w))
			prev := zero
			for r := 1; r <= rounds; r++ {
				next := H(w*1000 + r)
				if err := s.Update(ctx, repo, []refs.Update{{Name: code, Old: prev, New: next}, {Name: data, Old: prev, New: next}}, nil, ""); err != nil {
					errs <- err
					return
				}
				prev = next
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := 0; w < workers; w++ {
		wantRef(t, s, refs.Name(fmt.Sprintf("refs/heads/b%d", w)), H(w*1000+rounds))
		wantRef(t, s, refs.Name(fmt.Sprintf("refs/data/b%d", w)), H(w*1000+rounds))
	}
}

// testOverlap: updates naming the same refs in opposite orders, from many
// goroutines at once, never deadlock, and every success is accounted for.
func testOverlap(t *testing.T, s refs.Store, _ *objects.Store) {
	ctx := context.Background()
	names := []refs.Name{"refs/heads/a", "refs/heads/b", "refs/heads/c"}
	for _, n := range names {
		mustUpdate(t, s, "create", refs.Update{Name: n, Old: zero, New: H(0)})
	}
	var mu sync.Mutex
	wins := 0
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				// Read-modify-write all three refs, in an order that
				// depends on the worker.
				order := []int{w % 3, (w + 1 + w/3%2) % 3, (w + 2 - w/3%2) % 3}
				cur, err := s.Resolve(ctx, repo, names[0])
				if err != nil {
					t.Error(err)
					return
				}
				next := H(w*1000 + i + 1)
				var us []refs.Update
				for _, j := range order {
					us = append(us, refs.Update{Name: names[j], Old: cur, New: next})
				}
				err = s.Update(ctx, repo, us, nil, "")
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, refs.ErrStale) {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	a, _ := s.Resolve(ctx, repo, names[0])
	for _, n := range names[1:] {
		wantRef(t, s, n, a)
	}
	log, err := s.Reflog(ctx, repo, names[2])
	if err != nil || len(log) != wins+1 {
		t.Fatalf("reflog of %s has %d entries, want %d: %v", names[2], len(log), wins+1, err)
	}
}
