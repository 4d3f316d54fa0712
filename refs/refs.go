package refs

import (
	"context"
	"errors"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// Name is a full ref name: "HEAD", "refs/heads/main", "refs/data/main".
type Name string

// Conventional prefixes.
const (
	HeadsPrefix = "refs/heads/"
	TagsPrefix  = "refs/tags/"
	DataPrefix  = "refs/data/" // refs/data/<branch>: the branch's data commit
	RunsPrefix  = "refs/runs/" // refs/runs/<run-id>/{code,data,log}
	// MergePrefix names merge requests: a push to refs/merge/<b> asks the
	// server to merge the pushed commit into branch b (the merge queue).
	// No ref under it is ever written.
	MergePrefix = "refs/merge/"
	HEAD        = Name("HEAD")
)

// Ref is one ref: either direct (Hash) or symbolic (Target).
type Ref struct {
	Name   Name
	Hash   objects.Hash
	Target Name // non-empty for a symbolic ref
}

// Update moves one ref. Old == ZeroHash means the ref must not exist
// (create); New == ZeroHash means delete.
type Update struct {
	Name Name
	Old  objects.Hash
	New  objects.Hash
}

// Errors.
var (
	ErrNotFound = errors.New("refs: ref not found")
	ErrStale    = errors.New("refs: stale old value")
	ErrBadName  = errors.New("refs: invalid ref name")
)

// StaleError says which ref did not hold the expected old value.
// errors.Is(err, ErrStale) is true.
type StaleError struct {
	Name     Name
	Expected objects.Hash
	Actual   objects.Hash // ZeroHash if the ref does not exist
}

func (e *StaleError) Error() string {
	return "refs: stale old value for " + string(e.Name) + ": expected " + e.Expected.String() + ", found " + e.Actual.String()
}

// Unwrap makes errors.Is(err, ErrStale) hold.
func (e *StaleError) Unwrap() error { return ErrStale }

// LogEntry is one reflog record.
type LogEntry struct {
	Old, New objects.Hash
	UnixNano int64
	Message  string
}

// Quarantine is what Update needs of a push's quarantine
// (*objects.Quarantine implements it): which repo it belongs to, and a way
// to add the ref writes to its atomic batch so that the push's objects and
// the refs that reach them commit in one synced write, or neither does.
type Quarantine interface {
	Repo() objects.RepoName
	// CommitWith calls write with the quarantine's batch, holding the
	// quarantine's own lock, then commits the batch with kv.Sync. If
	// write fails nothing is committed.
	CommitWith(write func(kv.Writer) error) error
}

var _ Quarantine = (*objects.Quarantine)(nil)

// Store is the ref store. Its one write primitive is Update.
//
// Implemented by *DB (on any kv driver, db.go). The conformance suite in
// refs/refstest runs against every implementation, on every driver.
//
//	func NewDB(store *objects.Store) *DB   // shares store.DB()
type Store interface {
	// Get returns one ref without following symbolic refs; ErrNotFound if absent.
	Get(ctx context.Context, repo objects.RepoName, name Name) (Ref, error)
	// Resolve follows symbolic refs to a hash; ErrNotFound if absent.
	Resolve(ctx context.Context, repo objects.RepoName, name Name) (objects.Hash, error)
	// List returns refs whose names start with prefix, sorted by name.
	List(ctx context.Context, repo objects.RepoName, prefix string) ([]Ref, error)
	// Update applies all updates or none: each ref must hold its Old value.
	// If q is non-nil its batch (the push's objects) commits in the same
	// synced write. Returns *StaleError naming the first ref that moved.
	Update(ctx context.Context, repo objects.RepoName, updates []Update, q Quarantine, message string) error
	// SetSymbolic points name (usually HEAD) at target.
	SetSymbolic(ctx context.Context, repo objects.RepoName, name, target Name) error
	// Reflog returns a ref's history, oldest first.
	Reflog(ctx context.Context, repo objects.RepoName, name Name) ([]LogEntry, error)
	// Repos lists every repo that has at least one ref.
	Repos(ctx context.Context) ([]objects.RepoName, error)
}
