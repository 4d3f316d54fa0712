package hooks

import (
	"context"
	"io"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Command is one ref update a client asked for.
type Command struct {
	Name refs.Name
	Old  objects.Hash // ZeroHash: create
	New  objects.Hash // ZeroHash: delete
}

// Push is what a pre-receive hook sees.
type Push struct {
	Repo       objects.RepoName
	Commands   []Command
	Quarantine *objects.Quarantine // the push's objects; readable here only
	Options    []string            // push options (git push -o), opaque
	Atomic     bool                // client asked for --atomic
	Pusher     access.Identity     // authenticated identity, access.Anonymous on loopback
	// Progress reaches the client as "remote: " lines (side band 2).
	// Write whole lines.
	Progress io.Writer
}

// Result is a hook's decision.
type Result struct {
	// Refused maps a ref the hook refuses to the reason the client sees in
	// "! [remote rejected] <ref> (<reason>)".
	Refused map[refs.Name]string
	// Updates are extra ref updates (data refs, refs/runs/...) committed in
	// the same atomic write as the accepted commands. If every command is
	// refused, Updates are still committed with the push's objects, so a
	// failed run stays fetchable.
	//
	// An update of refs/data/<b> belongs to the command on refs/heads/<b>
	// (invariant 1): gitserver commits it only together with that command
	// and drops it when that command is refused, even at commit time (a
	// stale old value); refs/runs/... updates are always committed.
	Updates []refs.Update
	// Lands says how each merge request the hook accepts lands (a command
	// on refs/merge/<b>: merge the pushed commit into branch b; the merge
	// queue, merge.go): the update of refs/heads/<b> gitserver commits in
	// its place, under the same rules as a command's (its refs/data/<b>
	// update goes with it; a stale old value refuses the request). A zero
	// Update accepts the request and writes nothing (the commit is already
	// on the branch). A merge request the hook accepts without an entry
	// here is refused: refs/merge/<b> itself is never written.
	Lands map[refs.Name]refs.Update
	// Finish, if set, returns more such updates for one outcome of the
	// push: refused holds the reason of every command that will not land
	// (accepted commands are absent). gitserver calls it just before each
	// attempt to commit and commits what it returns with the accepted
	// commands, under the same rules as Updates. Objects its updates need
	// go into the push's quarantine. It is called again:
	//
	//   - when a compare-and-swap refuses a command (a new outcome);
	//   - when one of its own updates was stale (a ref it reads, such as
	//     refs/data/<b>, moved meanwhile), with the same outcome, a
	//     bounded number of times: it reads the refs again and answers
	//     for their new values;
	//   - after it refused commands itself.
	//
	// refuse maps commands the outcome accepts but Finish cannot (say, a
	// run whose branch data moved under it in a way its outputs cannot be
	// published onto) to the reason the client sees; gitserver refuses
	// them (every command of an atomic push) and asks again for that new
	// outcome. Finish's calls are sequential; ctx outlives the client.
	Finish func(ctx context.Context, refused map[refs.Name]string) (updates []refs.Update, refuse map[refs.Name]string)
	// Report, if set, is called once the push is decided and written, with
	// the final outcome (as for Finish), before the client gets the report:
	// whatever it writes to Push.Progress still reaches the client. Only
	// here may a hook say that a branch advanced.
	Report func(refused map[refs.Name]string)
}

// PreReceive decides a push. An error refuses every command with the
// error's text.
type PreReceive interface {
	PreReceive(ctx context.Context, p *Push) (*Result, error)
}

// None accepts every push.
type None struct{}

// PreReceive accepts p unchanged.
func (None) PreReceive(context.Context, *Push) (*Result, error) { return &Result{}, nil }
