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
