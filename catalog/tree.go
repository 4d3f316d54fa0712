package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/objects"
)

// weirSig is the author and committer of every data commit the server makes.
func weirSig() object.Signature {
	return object.Signature{Name: "Weir", Email: "weir@localhost", When: time.Now().UTC().Truncate(time.Second)}
}

// parseHash parses a 40-hex object name in either case (users type revs).
func parseHash(s string) (objects.Hash, error) {
	h, ok := objects.ParseHash([]byte(strings.ToLower(s)))
	if !ok {
		return objects.ZeroHash, fmt.Errorf("%q is not a 40-hex object name", s)
	}
	return h, nil
}

// objectReader reads objects of one repo: the store, or a push's quarantine.
type objectReader interface {
	Get(ctx context.Context, h objects.Hash) (*objects.Object, error)
}

// objectWriter writes objects into one repo.
type objectWriter interface {
	Put(ctx context.Context, typ objects.Type, data []byte) (objects.Hash, error)
}

type repoObjects struct {
	s    *objects.Store
	repo objects.RepoName
}

func (r repoObjects) Get(ctx context.Context, h objects.Hash) (*objects.Object, error) {
	return r.s.Get(ctx, r.repo, h)
}

func (r repoObjects) Put(ctx context.Context, typ objects.Type, data []byte) (objects.Hash, error) {
	return r.s.Put(ctx, r.repo, typ, data)
}

type quarantineObjects struct{ q *objects.Quarantine }

func (r quarantineObjects) Get(ctx context.Context, h objects.Hash) (*objects.Object, error) {
	return r.q.Get(ctx, h)
}

// treeEntry is one entry of a Git tree.
type treeEntry struct {
	Name string
	Mode filemode.FileMode
	Hash objects.Hash
}

// parseTree decodes a raw tree object.
func parseTree(data []byte) ([]treeEntry, error) {
	var out []treeEntry
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return nil, errors.New("malformed tree: no mode")
		}
		mode, err := strconv.ParseUint(string(data[:sp]), 8, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed tree mode %q", data[:sp])
		}
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		if nul < 0 || len(data) < nul+21 {
			return nil, errors.New("malformed tree: truncated entry")
		}
		var h objects.Hash
		copy(h[:], data[nul+1:nul+21])
		out = append(out, treeEntry{Name: string(data[:nul]), Mode: filemode.FileMode(mode), Hash: h})
		data = data[nul+21:]
	}
	return out, nil
}

// encodeTree encodes entries in Git's canonical order.
func encodeTree(entries []treeEntry) []byte {
	key := func(e treeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%o %s\x00", uint32(e.Mode), e.Name)
		b.Write(e.Hash[:])
	}
	return b.Bytes()
}

// dataState is a data commit's tree, decoded.
type dataState struct {
	head       objects.Hash // the commit it was read from; ZeroHash for empty
	code       objects.Hash // gitlink "code"; ZeroHash if absent
	tables     map[TableName]objects.Hash
	namespaces map[string]objects.Hash
	// staged holds table metadata prepared by this state's writers but not
	// yet in the warehouse: written once per table, the last version,
	// just before the state is committed (committer.go).
	staged map[TableName]stagedMeta
}

// stagedMeta is a table's next metadata, to be written at loc; ptr is the
// pointer blob that names it. syncs are the background syncs of files the
// server wrote that meta names (rebased manifest lists, its own and those
// of the earlier writes of the batch it builds on): the commit that
// publishes it waits for them (durable.go).
type stagedMeta struct {
	ptr   objects.Hash
	loc   string
	meta  table.Metadata
	syncs []*fileSync
}

// setTable points t at a staged pointer whose metadata is written when the
// state is committed.
func (s *dataState) setTable(t TableName, sm stagedMeta) {
	s.tables[t] = sm.ptr
	if s.staged == nil {
		s.staged = map[TableName]stagedMeta{}
	}
	s.staged[t] = sm
}

// stagedFor returns t's staged metadata if t still points at it.
func (s *dataState) stagedFor(t TableName) (stagedMeta, bool) {
	sm, ok := s.staged[t]
	return sm, ok && s.tables[t] == sm.ptr
}

func newDataState() *dataState {
	return &dataState{tables: map[TableName]objects.Hash{}, namespaces: map[string]objects.Hash{}}
}

func (s *dataState) clone() *dataState {
	c := &dataState{head: s.head, code: s.code, tables: make(map[TableName]objects.Hash, len(s.tables)), namespaces: make(map[string]objects.Hash, len(s.namespaces))}
	for k, v := range s.tables {
		c.tables[k] = v
	}
	for k, v := range s.namespaces {
		c.namespaces[k] = v
	}
	return c
}

// TreeError is a data tree that is not one the server could have written.
type TreeError struct {
	Path   string
	Reason string
}

func (e *TreeError) Error() string { return "catalog: data tree: " + e.Path + ": " + e.Reason }

// readTree reads and parses the tree h.
func readTree(ctx context.Context, r objectReader, h objects.Hash) ([]treeEntry, error) {
	data, err := getObject(ctx, r, h, plumbing.TreeObject)
	if err != nil {
		return nil, err
	}
	return parseTree(data)
}

func getObject(ctx context.Context, r objectReader, h objects.Hash, want objects.Type) ([]byte, error) {
	o, err := r.Get(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", want, h, err)
	}
	if o.Type != want {
		return nil, fmt.Errorf("object %s is a %s, want a %s", h, o.Type, want)
	}
	return o.Data, nil
}

// readCommit decodes a commit object.
func readCommit(ctx context.Context, r objectReader, h objects.Hash) (*object.Commit, error) {
	data, err := getObject(ctx, r, h, plumbing.CommitObject)
	if err != nil {
		return nil, err
	}
	mo := &plumbing.MemoryObject{}
	mo.SetType(plumbing.CommitObject)
	if _, err := mo.Write(data); err != nil {
		return nil, err
	}
	c := &object.Commit{}
	if err := c.Decode(mo); err != nil {
		return nil, fmt.Errorf("decode commit %s: %w", h, err)
	}
	c.Hash = h
	return c, nil
}

// readState decodes the data tree of commit h; ZeroHash gives an empty state.
// It refuses any entry a server-written data tree cannot contain.
func readState(ctx context.Context, r objectReader, h objects.Hash) (*dataState, error) {
	st := newDataState()
	st.head = h
	if h.IsZero() {
		return st, nil
	}
	c, err := readCommit(ctx, r, h)
	if err != nil {
		return nil, err
	}
	entries, err := readTree(ctx, r, c.TreeHash)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		switch {
		case e.Name == "code" && e.Mode == filemode.Submodule:
			st.code = e.Hash
		case e.Name == "tables" && e.Mode == filemode.Dir:
			nss, err := readTree(ctx, r, e.Hash)
			if err != nil {
				return nil, err
			}
			for _, ns := range nss {
				if ns.Mode != filemode.Dir || ValidateNamespace(ns.Name) != nil {
					return nil, &TreeError{Path: "tables/" + ns.Name, Reason: "not a namespace directory with a valid name"}
				}
				ts, err := readTree(ctx, r, ns.Hash)
				if err != nil {
					return nil, err
				}
				for _, t := range ts {
					if t.Mode != filemode.Regular || ValidateName(t.Name) != nil {
						return nil, &TreeError{Path: "tables/" + ns.Name + "/" + t.Name, Reason: "not a table pointer file with a valid name"}
					}
					st.tables[TableName{ns.Name, t.Name}] = t.Hash
				}
			}
		case e.Name == "namespaces" && e.Mode == filemode.Dir:
			nss, err := readTree(ctx, r, e.Hash)
			if err != nil {
				return nil, err
			}
			for _, ns := range nss {
				if ns.Mode != filemode.Regular || ValidateNamespace(ns.Name) != nil {
					return nil, &TreeError{Path: "namespaces/" + ns.Name, Reason: "not a namespace file with a valid name"}
				}
				st.namespaces[ns.Name] = ns.Hash
			}
		default:
			return nil, &TreeError{Path: e.Name, Reason: fmt.Sprintf("unexpected entry (mode %o) in a data tree", uint32(e.Mode))}
		}
	}
	return st, nil
}

// writeTree stores st's tree objects and returns the root tree hash.
func writeTree(ctx context.Context, w objectWriter, st *dataState) (objects.Hash, error) {
	var root []treeEntry
	if !st.code.IsZero() {
		root = append(root, treeEntry{Name: "code", Mode: filemode.Submodule, Hash: st.code})
	}
	byNS := map[string][]treeEntry{}
	for t, h := range st.tables {
		byNS[t.Namespace] = append(byNS[t.Namespace], treeEntry{Name: t.Name, Mode: filemode.Regular, Hash: h})
	}
	if len(byNS) > 0 {
		var nsEntries []treeEntry
		for ns, es := range byNS {
			h, err := w.Put(ctx, plumbing.TreeObject, encodeTree(es))
			if err != nil {
				return objects.ZeroHash, err
			}
			nsEntries = append(nsEntries, treeEntry{Name: ns, Mode: filemode.Dir, Hash: h})
		}
		h, err := w.Put(ctx, plumbing.TreeObject, encodeTree(nsEntries))
		if err != nil {
			return objects.ZeroHash, err
		}
		root = append(root, treeEntry{Name: "tables", Mode: filemode.Dir, Hash: h})
	}
	if len(st.namespaces) > 0 {
		var es []treeEntry
		for ns, h := range st.namespaces {
			es = append(es, treeEntry{Name: ns, Mode: filemode.Regular, Hash: h})
		}
		h, err := w.Put(ctx, plumbing.TreeObject, encodeTree(es))
		if err != nil {
			return objects.ZeroHash, err
		}
		root = append(root, treeEntry{Name: "namespaces", Mode: filemode.Dir, Hash: h})
	}
	return w.Put(ctx, plumbing.TreeObject, encodeTree(root))
}

// writeCommit stores a commit of tree with parents and message.
func writeCommit(ctx context.Context, w objectWriter, tree objects.Hash, parents []objects.Hash, message string) (objects.Hash, error) {
	sig := weirSig()
	c := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: tree, ParentHashes: parents}
	mo := &plumbing.MemoryObject{}
	if err := c.Encode(mo); err != nil {
		return objects.ZeroHash, err
	}
	rd, err := mo.Reader()
	if err != nil {
		return objects.ZeroHash, err
	}
	defer rd.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rd); err != nil {
		return objects.ZeroHash, err
	}
	return w.Put(ctx, plumbing.CommitObject, b.Bytes())
}

// namespaceDoc is the JSON content of namespaces/<ns>.
type namespaceDoc struct {
	Namespace  string            `json:"namespace"`
	Properties map[string]string `json:"properties"`
}

func marshalNamespace(ns string, props map[string]string) []byte {
	if props == nil {
		props = map[string]string{}
	}
	b, _ := json.Marshal(namespaceDoc{Namespace: ns, Properties: props}) // map keys are sorted
	return append(b, '\n')
}

func parseNamespace(ns string, data []byte) (map[string]string, error) {
	var d namespaceDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	if d.Namespace != ns {
		return nil, fmt.Errorf("namespace file %s names namespace %q", ns, d.Namespace)
	}
	if !bytes.Equal(marshalNamespace(ns, d.Properties), data) {
		return nil, fmt.Errorf("namespace %s: not in canonical form", ns)
	}
	if d.Properties == nil {
		d.Properties = map[string]string{}
	}
	return d.Properties, nil
}

// repoSegment maps a repo name to one path segment of the warehouse.
func repoSegment(repo objects.RepoName) string {
	return strings.ReplaceAll(string(repo), "/", "@")
}
