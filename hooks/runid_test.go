package hooks

import (
	"slices"
	"testing"
	"time"
)

// TestRunIDTime: a new id carries the second it was made, is a valid id,
// and sorts by it; ids of the older form (8 random hex digits) and
// foreign strings carry none.
func TestRunIDTime(t *testing.T) {
	before := time.Now().Add(-time.Second)
	id := newRunID()
	got, ok := id.Time()
	if !ValidRunID(string(id)) || len(id) != 18 || !ok || got.Before(before.Truncate(time.Second)) || got.After(time.Now()) {
		t.Fatalf("newRunID() = %s: valid %v, time %v %v", id, ValidRunID(string(id)), got, ok)
	}
	if got, ok := RunID("r-6575a3c19f03b2aa").Time(); !ok || got.Unix() != 0x6575a3c1 {
		t.Fatalf("r-6575a3c19f03b2aa: %v %v", got, ok)
	}
	for _, old := range []RunID{"r-9f03b2aa", "r-6575A3C19F03B2AA", "x-6575a3c19f03b2aa", "r-6575a3c19f03b2aaff", ""} {
		if tm, ok := old.Time(); ok {
			t.Errorf("%q.Time() = %v, want none", old, tm)
		}
	}
}

// TestRunIDsSortAsMade: ids made one after another, many within one
// second, sort by name in the order they were made (weir runs lists kept
// runs by name after a restart).
func TestRunIDsSortAsMade(t *testing.T) {
	var ids []string
	for range 50 {
		ids = append(ids, string(newRunID()))
		time.Sleep(time.Millisecond)
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("run ids made in order do not sort in order: %v", ids)
	}
}
