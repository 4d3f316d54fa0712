package objects

import (
	"context"
	"errors"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/weir-dev/weir/kv"
	"golang.org/x/sync/semaphore"
)

// Hash is a SHA-1 object name.
type Hash = plumbing.Hash

// ZeroHash is the all-zero hash: "no object" in ref updates.
var ZeroHash = plumbing.ZeroHash

// Type is a Git object type (commit, tree, blob, tag).
type Type = plumbing.ObjectType

// RepoName names one repo, without the ".git" suffix: "demo", "team/demo".
// Construct it with ParseRepoName so it is always valid.
type RepoName string

// ErrNotFound is returned when an object is not in the repo.
var ErrNotFound = errors.New("objects: object not found")

// Object is one inflated Git object.
type Object struct {
	Type Type
	Data []byte
}

// Limits bound what one push may bring, and the memory the server spends
// on it. Zero fields take the defaults below.
type Limits struct {
	MaxPackBytes   int64 // whole received pack
	MaxObjectBytes int64 // one inflated object (a delta's declared result included)
	// MaxInflatedBytes bounds the sum of the inflated sizes of a pack's
	// objects, deltas counted at the size they declare: a pack of a few
	// hundred bytes can describe gigabytes of deltas (a delta bomb), and
	// the server stores every object whole.
	MaxInflatedBytes int64
	// MaxObjects bounds the number of entries in one pack: the server
	// keeps about 300 bytes of bookkeeping per object while a push is
	// received and checked.
	MaxObjects int64
	// MaxBaseMemory bounds, across every push the Store receives at once,
	// the delta bases held in memory while deltas are resolved (a base is
	// read whole: copies may come from anywhere in it). A push waits for
	// its share; one base larger than the whole budget runs alone.
	MaxBaseMemory int64
}

// Store reads and writes objects in one kv database (kv/pebblekv on disk,
// kv/memkv in tests).
//
// Methods (implemented in store.go):
//
//	func Open(db kv.DB, limits Limits) (*Store, error)             // New, after dropping the spills a crash left behind
//	func New(db kv.DB, limits Limits) *Store                        // for a database no crash can have left spills in (a fresh one)
//	func (s *Store) DB() kv.DB                                      // packages refs and catalog share it
//	func (s *Store) Limits() Limits                                // with defaults filled in
//	func (s *Store) Get(ctx context.Context, repo RepoName, h Hash) (*Object, error)
//	func (s *Store) Has(ctx context.Context, repo RepoName, h Hash) (bool, error)
//	func (s *Store) Raw(ctx context.Context, repo RepoName, h Hash) (typ Type, size int64, zdata []byte, err error)
//	func (s *Store) Stat(ctx context.Context, repo RepoName, h Hash) (Type, int64, error)         // type and size, content not read
//	func (s *Store) Put(ctx context.Context, repo RepoName, typ Type, data []byte) (Hash, error) // not synced; made durable by the next synced ref update
//	func (s *Store) Storer(repo RepoName) storer.EncodedObjectStorer                         // read-only, for go-git plumbing (object.GetCommit, ...)
//	func (s *Store) NewQuarantine(repo RepoName) *Quarantine
//	func (s *Store) DeleteRepo(ctx context.Context, repo RepoName) error
//
// Errors: ErrNotFound, ErrBadObject, ErrReadOnly (go-git writes),
// ErrBadPack and ErrTooLarge (IngestPack, Put), ErrClosed (Quarantine),
// ErrBadRepoName (ParseRepoName), *CheckError (Check).
type Store struct {
	db     kv.DB
	limits Limits
	// bases is the MaxBaseMemory budget shared by every IngestPack.
	bases *semaphore.Weighted
	mem   memBudget
	// cache holds objects resolved from delta values (chain.go).
	cache *readCache
	// gc is what garbage collection needs of every write (gc.go).
	gc gcState
}

// Default limits, used where Limits holds 0.
const (
	DefaultMaxPackBytes     int64 = 1 << 30   // 1 GiB
	DefaultMaxObjectBytes   int64 = 256 << 20 // 256 MiB
	DefaultMaxInflatedBytes int64 = 2 << 30   // 2 GiB
	DefaultMaxObjects       int64 = 1 << 20   // 1,048,576
	// DefaultMaxBaseMemory is used when it is larger than MaxObjectBytes;
	// otherwise the budget is MaxObjectBytes, so one base always fits.
	DefaultMaxBaseMemory int64 = 256 << 20
)

// memBudget is the memory one IngestPack may use besides its delta bases
// and its per-object bookkeeping; what does not fit goes to spills.
type memBudget struct {
	// inline is the most bytes of stored values a quarantine keeps in
	// its in-memory batch; inlineObject the largest value kept there.
	inline, inlineObject int64
	// deltas is the most bytes of compressed delta instructions kept in
	// memory until they are resolved.
	deltas int64
	// cache is the size of the cache of resolved delta bases.
	cache int64
	// records is the most bytes of delta records (delta.go) one pack
	// keeps in its batch.
	records int64
}

// The memory budget of one IngestPack. With the delta bases (MaxBaseMemory,
// shared) and ~300 bytes per object, this is all the memory a push takes,
// whatever the size of its pack.
const (
	defaultInlineBytes    = 16 << 20
	defaultInlineObject   = 1 << 20
	defaultDeltaBytes     = 8 << 20
	defaultBaseCacheBytes = 32 << 20
	defaultRecordBytes    = 16 << 20
)

// Quarantine holds the objects of one push until refs.Store commits them
// with the ref updates, or Close drops them. It is safe for concurrent
// use: reads may run in parallel; writes and the commit are exclusive.
//
// Methods (implemented in quarantine.go and fsck.go):
//
//	func (q *Quarantine) Repo() RepoName
//	func (q *Quarantine) IngestPack(ctx context.Context, r io.Reader) ([]Hash, error) // resolves ofs/ref deltas against the quarantine and the repo; enforces Limits; all or nothing
//	func (q *Quarantine) Put(typ Type, data []byte) (Hash, error)
//	func (q *Quarantine) Get(ctx context.Context, h Hash) (*Object, error)            // sees quarantine, then repo
//	func (q *Quarantine) Has(ctx context.Context, h Hash) (bool, error)
//	func (q *Quarantine) Raw(ctx context.Context, h Hash) (Type, int64, []byte, error)
//	func (q *Quarantine) Stat(ctx context.Context, h Hash) (Type, int64, error)
//	func (q *Quarantine) Ingested() []Hash                                           // everything written into it, sorted
//	func (q *Quarantine) Storer() storer.EncodedObjectStorer                         // quarantine + repo, for hooks
//	func (q *Quarantine) Check(ctx context.Context, tips []Hash) error              // fsck of ingested objects and the .gitmodules/.gitattributes blobs their trees name + connectivity from tips; *CheckError
//	func (q *Quarantine) CommitWith(write func(kv.Writer) error) error              // refs.Store adds its ref writes, under q's lock; one synced commit
//	func (q *Quarantine) Committed() bool
//	func (q *Quarantine) Close() error                                               // drop unless committed
type Quarantine struct {
	store *Store
	repo  RepoName
	batch kv.Batch

	// mu serialises writes to batch against reads through it: a kv
	// batch is not safe for a write concurrent with anything else.
	mu        sync.RWMutex
	ingested  map[Hash]Type    // every object written into this quarantine
	checked   map[Hash]checked // checks made at ingest (precheck.go); replaced, never changed
	spills    []*spill         // spills its batch points into; dropped unless committed
	committed bool
	closed    bool
	// sweeps is Store.Sweeps when the quarantine was made: a commit after
	// a later sweep checks that nothing its objects name was collected
	// (gc.go).
	sweeps uint64
}

// CheckError is a rejected object: which object, which check, and why.
type CheckError struct {
	Object Hash
	Check  string // git fsck's message id, e.g. "hasDotgit", "zeroPaddedFilemode", "gitmodulesUrl", "missingObject"
	Detail string
}

func (e *CheckError) Error() string {
	return "objects: " + e.Object.String() + ": " + e.Check + ": " + e.Detail
}

var (
	_ = context.Background
	_ storer.EncodedObjectStorer
	_ kv.DB
)
