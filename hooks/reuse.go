package hooks

import (
	"bytes"
	"strings"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/objects"
)

// OptionRerun runs every node of the pipeline, unchanged seeds included.
const OptionRerun = "rerun"

// Unchanged seeds are not run again.
//
// A seed is a pure function of its CSV file and weir.toml: run again on
// the same bytes it makes the same table. So a seed node is skipped, and
// its table taken as it is in the data the run starts from, when that
// table's pointer says it was last written by a pipeline run (run id
// "r-...", not a REST write, an import or a merge of other writes) whose
// code commit holds byte-identical copies of the seed's CSV file and of
// weir.toml (or neither has one), and the seed replaces its table. Every
// other node runs as always; nodes reading the seed's table read it from
// the start data. The table's pointer keeps naming the run and code
// commit that made it, which is the truth (invariant 7).
//
// git push -o rerun runs every seed regardless.
//
// No other node is reused. A Python model may import any helper under
// lib/ (pylib.go): reusing one would need lib/'s tree id in its key.

// reusableSeeds returns the seed nodes of r.plan whose table in tabs (the
// start data) is what they would make, with that table's pointer.
func (r *run) reusableSeeds(tabs map[catalog.TableName]catalog.Pointer) map[int]catalog.Pointer {
	if len(tabs) == 0 || r.push.Quarantine == nil {
		return nil
	}
	s := r.push.Quarantine.Storer()
	files := map[objects.Hash]map[string][]byte{} // code commit -> its pipeline files
	read := func(c objects.Hash) map[string][]byte {
		if f, ok := files[c]; ok {
			return f
		}
		f, err := pipeline.ReadFiles(s, c)
		if err != nil {
			f = nil // unreadable: nothing is reused from it
		}
		files[c] = f
		return f
	}
	out := map[int]catalog.Pointer{}
	for i, n := range r.plan.Nodes {
		if n.Kind != pipeline.KindSeed || len(n.Outputs) != 1 || (n.Materialize != "" && n.Materialize != pipeline.Replace) {
			continue
		}
		t := n.Outputs[0]
		p, ok := tabs[catalog.TableName{Namespace: t.Namespace(), Name: t.Name()}]
		if !ok || !strings.HasPrefix(p.Run, "r-") || p.CodeCommit.IsZero() {
			continue
		}
		then, now := read(p.CodeCommit), read(r.code)
		if then == nil || now == nil {
			continue
		}
		csv, had := then[n.File]
		cfgThen, hadCfg := then[pipeline.ConfigFile]
		cfgNow, hasCfg := now[pipeline.ConfigFile]
		if !had || !bytes.Equal(csv, n.Source) || hadCfg != hasCfg || !bytes.Equal(cfgThen, cfgNow) {
			continue
		}
		out[i] = p
	}
	return out
}
