package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// The upload-pack request parsers face untrusted bytes. Their fuzz targets
// check, beside "no panic": what a parser returns is bounded by what it
// read (a want line is at least 49 bytes on the wire), a parser returns a
// request or an error, never both, and a whole stateless session (HTTP)
// that fails on a malformed request has answered nothing (v0), or only its
// one ERR line (v2): never a partial answer.

// fuzzRepo is a small repo "r": two commits on main, a tag.
func fuzzRepo(tb testing.TB) (*Server, objects.Hash, objects.Hash) {
	tb.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	store := objects.New(db, objects.Limits{})
	rs := refs.NewDB(store)
	ctx := context.Background()
	put := func(typ plumbing.ObjectType, data string) objects.Hash {
		h, err := store.Put(ctx, "r", typ, []byte(data))
		if err != nil {
			tb.Fatal(err)
		}
		return h
	}
	blob := put(plumbing.BlobObject, "hello\n")
	tree := put(plumbing.TreeObject, "100644 hello.txt\x00"+string(blob[:]))
	id := "F U <f@u.z> 1700000000 +0000"
	c1 := put(plumbing.CommitObject, fmt.Sprintf("tree %s\nauthor %s\ncommitter %s\n\none\n", tree, id, id))
	c2 := put(plumbing.CommitObject, fmt.Sprintf("tree %s\nparent %s\nauthor %s\ncommitter %s\n\ntwo\n", tree, c1, id, id))
	tag := put(plumbing.TagObject, fmt.Sprintf("object %s\ntype commit\ntag v1\ntagger %s\n\nv1\n", c1, id))
	if err := rs.Update(ctx, "r", []refs.Update{
		{Name: "refs/heads/main", New: c2},
		{Name: "refs/tags/v1", New: tag},
	}, nil, "fuzz"); err != nil {
		tb.Fatal(err)
	}
	return &Server{Objects: store, Refs: rs}, c1, c2
}

// malformed reports whether err refuses the request itself.
func malformed(err error) bool {
	return errors.Is(err, ErrProtocol) || errors.Is(err, errBadPktLine)
}

func FuzzUploadRequestV0(f *testing.F) {
	s, c1, c2 := fuzzRepo(f)
	caps := " multi_ack_detailed no-done side-band-64k thin-pack ofs-delta include-tag agent=git/2.39"
	for _, seed := range [][]string{
		{"want " + c2.String() + caps + "\n", "0000", "have " + c1.String() + "\n", "done\n"},
		{"want " + c2.String() + caps + "\n", "0000", "have " + c1.String() + "\n", "0000"},
		{"want " + c2.String() + caps + "\n", "want " + c1.String() + "\n", "deepen 1\n", "0000", "done\n"},
		{"want " + c2.String() + "\n", "shallow " + c1.String() + "\n", "deepen 2\n", "0000"},
		{"want " + c2.String() + "\n", "0000", "have " + c1.String() + "\n", "have nothex\n", "done\n"},
		{"want " + c2.String() + caps + " filter deepen-relative\n", "shallow " + c1.String() + "\n", "deepen 1\n", "filter blob:none\n", "0000", "done\n"},
		{"want " + c2.String() + caps + "\n", "deepen-since 1700000000\n", "deepen-not refs/tags/v1\n", "0000", "done\n"},
		{"want " + c2.String() + caps + " filter\n", "filter blob:limit=1k\n", "0000", "done\n"},
		{"want " + c2.String() + caps + " filter\n", "filter tree:0\n", "0000", "done\n"},
		{"want " + c2.String() + caps + " filter\n", "filter sparse:oid=x\n", "0000", "done\n"},
		{"want " + c2.String() + caps + "\n", "filter blob:none\n", "0000", "done\n"},
		{"want " + c2.String() + caps + "\n", "deepen 1\n", "deepen-since 5\n", "0000", "done\n"},
		{"want nothex\n", "0000"},
		{"deepen 0\n", "0000"},
		{"0001"},
		{"0000"},
	} {
		f.Add([]byte(pktStream(seed...)))
	}
	f.Add([]byte("zzzz"))
	f.Add([]byte("00ffwant"))
	f.Fuzz(func(t *testing.T, in []byte) {
		bound := len(in)/49 + 1
		pr := newPktReader(bytes.NewReader(in))
		req, err := readUploadRequest(pr)
		if req != nil && err != nil {
			t.Fatalf("both a request and an error: %v", err)
		}
		if req != nil {
			if len(req.wants)+len(req.shallows) > bound {
				t.Fatalf("%d wants and shallows from %d bytes", len(req.wants)+len(req.shallows), len(in))
			}
			for {
				round, err := readHaveRound(pr)
				if round != nil && err != nil {
					t.Fatalf("both a round and an error: %v", err)
				}
				if err != nil {
					break
				}
				if len(round.haves) > bound {
					t.Fatalf("%d haves from %d bytes", len(round.haves), len(in))
				}
				if round.done {
					break
				}
			}
		}
		var out bytes.Buffer
		err = s.Serve(context.Background(), bytes.NewReader(in), &out, &Session{Repo: "r", Service: UploadPack, StatelessRPC: true})
		if malformed(err) && out.Len() > 0 {
			t.Fatalf("malformed request (%v) got a partial answer: %q", err, out.Bytes())
		}
	})
}

func FuzzUploadRequestV2(f *testing.F) {
	s, c1, c2 := fuzzRepo(f)
	for _, seed := range [][]string{
		{"command=ls-refs\n", "agent=git/2.39\n", "object-format=sha1\n", "0001", "peel\n", "symrefs\n", "unborn\n", "ref-prefix HEAD\n", "ref-prefix refs/heads/\n", "0000"},
		{"command=fetch\n", "0001", "thin-pack\n", "ofs-delta\n", "no-progress\n", "include-tag\n", "want " + c2.String() + "\n", "have " + c1.String() + "\n", "done\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "deepen 1\n", "shallow " + c1.String() + "\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "have " + c1.String() + "\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "filter blob:none\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "deepen-since 1700000000\n", "deepen-not v1\n", "done\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "shallow " + c2.String() + "\n", "deepen 1\n", "deepen-relative\n", "done\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "filter tree:1\n", "filter blob:limit=2m\n", "done\n", "0000"},
		{"command=fetch\n", "0001", "want " + c2.String() + "\n", "deepen-not nosuch\n", "done\n", "0000"},
		{"command=ls-refs\n", "0001", "bogus\n", "0000"},
		{"command=bundle-uri\n", "0000"},
		{"command=fetch\n", "object-format=sha256\n", "0000"},
		{"command=fetch\n", "0001", "0001", "0000"},
		{"agent=x\n", "0000"},
		{"0002"},
	} {
		f.Add([]byte(pktStream(seed...)))
	}
	f.Add([]byte("0014command=ls-refs\n0001zzzz"))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := readV2Request(newPktReader(bytes.NewReader(in)))
		if req != nil && err != nil {
			t.Fatalf("both a request and an error: %v", err)
		}
		if req != nil {
			if n := len(req.args) + len(req.caps); n > len(in)/4 {
				t.Fatalf("%d lines from %d bytes", n, len(in))
			}
			fa, err := parseFetchArgs(req.args)
			if fa != nil && err != nil || fa == nil && !errors.Is(err, ErrProtocol) {
				t.Fatalf("parseFetchArgs: %v, %v", fa, err)
			}
			if fa != nil && len(fa.wants)+len(fa.haves)+len(fa.shallows) > len(req.args) {
				t.Fatal("more hashes than arguments")
			}
			la, err := parseLsRefsArgs(req.args)
			if la != nil && err != nil || la == nil && !errors.Is(err, ErrProtocol) {
				t.Fatalf("parseLsRefsArgs: %v, %v", la, err)
			}
		}
		var out bytes.Buffer
		err = s.Serve(context.Background(), bytes.NewReader(in), &out, &Session{Repo: "r", Service: UploadPack, Protocol: 2, StatelessRPC: true})
		if !malformed(err) || out.Len() == 0 {
			return
		}
		// The one answer a malformed request may get: a single ERR line.
		pr := newPktReader(bytes.NewReader(out.Bytes()))
		line, k, perr := pr.line()
		if perr != nil || k != pktData || !strings.HasPrefix(line, "ERR ") {
			t.Fatalf("malformed request (%v) got a partial answer: %q", err, out.Bytes())
		}
		if _, _, perr := pr.next(); perr != io.EOF {
			t.Fatalf("malformed request (%v) got more than its ERR line: %q", err, out.Bytes())
		}
	})
}

// FuzzUploadArchive: the upload-archive request (argument lines, then the
// options and tree-ish) is refused with a NACK or answered with ACK and an
// archive, never both, and never a panic.
func FuzzUploadArchive(f *testing.F) {
	s, _, c2 := fuzzRepo(f)
	for _, seed := range [][]string{
		{"argument --format=tar\n", "argument --prefix=p/\n", "argument main\n", "0000"},
		{"argument HEAD\n", "argument hello.txt\n", "0000"},
		{"argument v1\n", "0000"},
		{"argument main:\n", "0000"},
		{"argument --exec=sh\n", "argument main\n", "0000"},
		{"argument --format=zip\n", "argument -9\n", "argument main\n", "0000"},
		{"argument " + c2.String() + "\n", "0000"},
		{"argument --list\n", "0000"},
		{"bogus\n", "0000"},
		{"0000"},
	} {
		f.Add([]byte(pktStream(seed...)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		args, err := readArchiveArgs(newPktReader(bytes.NewReader(in)))
		if err == nil {
			if len(args) > maxArchiveArgs {
				t.Fatalf("%d arguments", len(args))
			}
			req, err := parseArchiveArgs(args)
			if (req == nil) == (err == nil) {
				t.Fatalf("parseArchiveArgs: %v, %v", req, err)
			}
		}
		var out bytes.Buffer
		err = s.Serve(context.Background(), bytes.NewReader(in), &out, &Session{Repo: "r", Service: UploadArchive})
		pr := newPktReader(bytes.NewReader(out.Bytes()))
		line, k, perr := pr.line()
		if out.Len() == 0 {
			return
		}
		if perr != nil || k != pktData {
			t.Fatalf("first answer %q: %v", out.Bytes(), perr)
		}
		if err != nil && line != "ACK" && !strings.HasPrefix(line, "NACK ") {
			t.Fatalf("refused (%v) with %q", err, line)
		}
		if strings.HasPrefix(line, "NACK ") {
			if _, _, perr := pr.next(); perr != io.EOF {
				t.Fatalf("a NACK and more: %q", out.Bytes())
			}
		}
	})
}
