package gitserver

import (
	"reflect"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/refs"
)

// TestBoundExtra: a hook's refs/data/<b> update is committed only with the
// refs/heads/<b> command it belongs to (invariant 1); run refs always are.
func TestBoundExtra(t *testing.T) {
	h := plumbing.NewHash("1111111111111111111111111111111111111111")
	up := func(name string) refs.Update { return refs.Update{Name: refs.Name(name), New: h} }
	extra := []refs.Update{up("refs/data/main"), up("refs/runs/r-1/code"), up("refs/data/feature")}
	names := func(us []refs.Update) []string {
		var out []string
		for _, u := range us {
			out = append(out, string(u.Name))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ups  []refs.Update
		want []string
	}{
		{"main accepted", []refs.Update{up("refs/heads/main")}, []string{"refs/data/main", "refs/runs/r-1/code"}},
		{"both accepted", []refs.Update{up("refs/heads/main"), up("refs/heads/feature")}, []string{"refs/data/main", "refs/runs/r-1/code", "refs/data/feature"}},
		{"code ref refused", nil, []string{"refs/runs/r-1/code"}},
		{"tag is not a branch", []refs.Update{up("refs/tags/main")}, []string{"refs/runs/r-1/code"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(boundExtra(tc.ups, extra)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("boundExtra = %v, want %v", got, tc.want)
			}
		})
	}
}
