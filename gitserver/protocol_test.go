package gitserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden transcripts in testdata/")

func TestPktReader(t *testing.T) {
	type pkt struct {
		kind pktKind
		data string
	}
	tests := []struct {
		name string
		in   string
		want []pkt
		err  string // error after the packets; "" means clean EOF
	}{
		{name: "empty", in: ""},
		{name: "specials", in: "000000010002", want: []pkt{{pktFlush, ""}, {pktDelim, ""}, {pktResponseEnd, ""}}},
		{name: "lines", in: "0009want\n0008have0000", want: []pkt{{pktData, "want\n"}, {pktData, "have"}, {pktFlush, ""}}},
		{name: "empty payload", in: "0004", want: []pkt{{pktData, ""}}},
		{name: "upper hex", in: "000Aabcdef", want: []pkt{{pktData, "abcdef"}}},
		{name: "length 3", in: "0003", err: "malformed pkt-line: bad length"},
		{name: "bad hex", in: "00g1xxxx", err: "malformed pkt-line: bad length"},
		{name: "too long", in: "fff5", err: "malformed pkt-line: bad length"},
		{name: "truncated length", in: "00", err: "malformed pkt-line: truncated length"},
		{name: "truncated payload", in: "000aabc", err: "malformed pkt-line: truncated payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPktReader(strings.NewReader(tt.in))
			var got []pkt
			var err error
			for {
				var k pktKind
				var b []byte
				k, b, err = pr.next()
				if err != nil {
					break
				}
				got = append(got, pkt{k, string(b)})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("packets = %v, want %v", got, tt.want)
			}
			switch {
			case tt.err == "" && err != io.EOF:
				t.Errorf("err = %v, want EOF", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestPktWriter(t *testing.T) {
	var buf bytes.Buffer
	pw := newPktWriter(&buf)
	pw.linef("version %d", 2)
	pw.data([]byte("a\x00b"))
	pw.special(pktDelim)
	pw.errLine("upload-pack: not our ref 1234")
	pw.flushPkt()
	pw.special(pktResponseEnd)
	if err := pw.send(); err != nil {
		t.Fatal(err)
	}
	want := "000eversion 2\n0007a\x00b0001" + "0026ERR upload-pack: not our ref 1234\n" + "00000002"
	if buf.String() != want {
		t.Errorf("wrote %q, want %q", buf.String(), want)
	}
	if err := newPktWriter(io.Discard).data(make([]byte, maxPktPayload+1)); err == nil {
		t.Error("an oversized payload was written")
	}
}

// TestBandWriters: side-band packets never exceed 65520 bytes, carry the
// band byte, and reassemble to the written bytes.
func TestBandWriters(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 14000) // 140000 bytes: 3 packets
	for _, tc := range []struct {
		name string
		w    func(pw *pktWriter) io.Writer
	}{
		{"bandWriter", func(pw *pktWriter) io.Writer { return newBandWriter(new(sync.Mutex), pw, bandPack, false) }},
		{"packBandWriter", func(pw *pktWriter) io.Writer { return packBandWriter{p: pw, max: maxBandPayload} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			pw := newPktWriter(&buf)
			if _, err := tc.w(pw).Write(payload); err != nil {
				t.Fatal(err)
			}
			pw.send()
			pr := newPktReader(&buf)
			var got []byte
			n := 0
			for {
				k, b, err := pr.next()
				if err == io.EOF {
					break
				}
				if err != nil || k != pktData {
					t.Fatalf("packet %d: %v %v", n, k, err)
				}
				if len(b)+4 > maxPktLen || b[0] != bandPack {
					t.Fatalf("packet %d: %d bytes, band %d", n, len(b)+4, b[0])
				}
				got = append(got, b[1:]...)
				n++
			}
			if n != 3 || !bytes.Equal(got, payload) {
				t.Errorf("%d packets, reassembled %d bytes; want 3 packets, %d bytes", n, len(got), len(payload))
			}
		})
	}
}

// pktStream builds pkt-lines: "0000", "0001" and "0002" are specials,
// anything else a data line written as is.
func pktStream(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		switch l {
		case "0000", "0001", "0002":
			b.WriteString(l)
		default:
			fmt.Fprintf(&b, "%04x%s", len(l)+4, l)
		}
	}
	return b.String()
}

func TestReadCommandList(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	z := plumbing.ZeroHash.String()
	tests := []struct {
		name     string
		in       string
		want     string // fmt of commands, caps, shallows; "<nil>" for no request
		err      string
		leftover string
	}{
		{name: "eof", in: "", want: "<nil>"},
		{name: "flush only", in: pktStream("0000"), want: "<nil>"},
		{
			name: "one with caps",
			in:   pktStream(z+" "+a+" refs/heads/main\x00report-status side-band-64k agent=git/2.39\n", "0000") + "PACK",
			want: "[{0000000000000000000000000000000000000000 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa refs/heads/main}] map[agent:git/2.39 report-status: side-band-64k:] []",
			// The pack after the flush stays unread for ingestion.
			leftover: "PACK",
		},
		{
			name: "shallow and two",
			in:   pktStream("shallow "+b+"\n", a+" "+b+" refs/heads/x\x00atomic", b+" "+z+" refs/tags/v1\n", "0000"),
			want: "[{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb refs/heads/x} {bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 0000000000000000000000000000000000000000 refs/tags/v1}] map[atomic:] [bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb]",
		},
		{name: "short", in: pktStream(a+" "+b+" \n", "0000"), err: "malformed command"},
		{name: "bad hex", in: pktStream(strings.Repeat("g", 40)+" "+b+" refs/heads/x\n", "0000"), err: "malformed command"},
		{name: "shallow after command", in: pktStream(a+" "+b+" refs/heads/x\n", "shallow "+a, "0000"), err: "shallow line after commands"},
		{name: "delim", in: pktStream("0001"), err: "unexpected delim pkt"},
		{name: "no flush", in: pktStream(a + " " + b + " refs/heads/x\n"), err: "read commands: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPktReader(strings.NewReader(tt.in))
			req, err := readCommandList(pr, ReceiveLimits{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "<nil>"
			if req != nil {
				got = fmt.Sprint(req.commands, " ", map[string]string(req.caps), " ", req.shallows)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			rest, _ := io.ReadAll(pr.reader())
			if string(rest) != tt.leftover {
				t.Errorf("left %q unread, want %q", rest, tt.leftover)
			}
		})
	}
}

func TestCheckRefFormat(t *testing.T) {
	for name, want := range map[string]bool{
		"refs/heads/main":         true,
		"refs/heads/feature/x-1":  true,
		"refs/data/main":          true,
		"refs/runs/abc/code":      true,
		"refs/tags/v1.0":          true,
		"HEAD":                    false,
		"heads/main":              false,
		"refs/heads/":             false,
		"refs/heads/a..b":         false,
		"refs/heads/a.lock":       false,
		"refs/heads/.hidden":      false,
		"refs/heads/a//b":         false,
		"refs/heads/a b":          false,
		"refs/heads/a~1":          false,
		"refs/heads/a^":           false,
		"refs/heads/a:b":          false,
		"refs/heads/a?":           false,
		"refs/heads/a*":           false,
		"refs/heads/a[":           false,
		"refs/heads/a\\b":         false,
		"refs/heads/a@{1}":        false,
		"refs/heads/@":            false,
		"refs/heads/end.":         false,
		"refs/heads/tab\there":    false,
		"refs/heads/x\x7f":        false,
		"refs/heads/ünïcode-okay": true,
		"refs/heads/-opt":         false, // the ref store refuses it: refused here, not at commit time
		"refs/heads/a/-b":         false,
	} {
		if got := checkRefFormat(name); got != want {
			t.Errorf("checkRefFormat(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAppendEntryHeader(t *testing.T) {
	for _, tc := range []struct {
		typ  plumbing.ObjectType
		size int64
		want []byte
	}{
		{plumbing.BlobObject, 0, []byte{0x30}},
		{plumbing.BlobObject, 15, []byte{0x3f}},
		{plumbing.CommitObject, 16, []byte{0x90, 0x01}},
		{plumbing.TreeObject, 1000, []byte{0xa8, 0x3e}},
		{plumbing.TagObject, 1 << 20, []byte{0xc0, 0x80, 0x80, 0x04}},
	} {
		if got := appendEntryHeader(nil, tc.typ, tc.size); !bytes.Equal(got, tc.want) {
			t.Errorf("header(%v, %d) = %x, want %x", tc.typ, tc.size, got, tc.want)
		}
	}
}

// FuzzPktLine: the reader never panics, and every data packet it returns
// re-encodes to the bytes it came from.
func FuzzPktLine(f *testing.F) {
	for _, s := range []string{"", "0000", "0001", "0002", "0009want\n0000", "0004", "00", "fff5", "000Aabcdef", "0003"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pr := newPktReader(bytes.NewReader(in))
		var re bytes.Buffer
		pw := newPktWriter(&re)
		for {
			k, b, err := pr.next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, errBadPktLine) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				break
			}
			if k == pktData {
				if len(b) > maxPktPayload {
					t.Fatalf("payload of %d bytes", len(b))
				}
				pw.data(b)
			} else {
				pw.special(k)
			}
		}
		pw.send()
		if !bytes.HasPrefix(bytes.ToLower(in), bytes.ToLower(re.Bytes())) {
			t.Fatalf("re-encoded %q is not a prefix of the input %q", re.Bytes(), in)
		}
	})
}

// FuzzCommandList: the command-list parser never panics, and what it
// accepts re-encodes to a list it parses the same way.
func FuzzCommandList(f *testing.F) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	f.Add([]byte(pktStream(a+" "+b+" refs/heads/main\x00report-status atomic\n", "0000")))
	f.Add([]byte(pktStream("shallow "+a+"\n", a+" "+b+" refs/heads/x\n", b+" "+a+" refs/heads/y\n", "0000")))
	f.Add([]byte(pktStream("0000")))
	f.Add([]byte(pktStream(a+" "+b+" \n", "0000")))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := readCommandList(newPktReader(bytes.NewReader(in)), ReceiveLimits{})
		if err != nil || req == nil {
			return
		}
		var lines []string
		for _, h := range req.shallows {
			lines = append(lines, "shallow "+h.String()+"\n")
		}
		var caps []string
		for k, v := range req.caps {
			if v != "" {
				k += "=" + v
			}
			caps = append(caps, k)
		}
		for i, c := range req.commands {
			l := c.Old.String() + " " + c.New.String() + " " + string(c.Name)
			if i == 0 {
				l += "\x00" + strings.Join(caps, " ")
			}
			if len(l)+5 > maxPktPayload {
				return
			}
			lines = append(lines, l+"\n")
		}
		lines = append(lines, "0000")
		again, err := readCommandList(newPktReader(strings.NewReader(pktStream(lines...))), ReceiveLimits{})
		if err != nil {
			// A name holding "\n" or NUL does not survive re-encoding;
			// such names are refused later as funny refnames.
			for _, c := range req.commands {
				if strings.ContainsAny(string(c.Name), "\n\x00") {
					return
				}
			}
			t.Fatalf("re-encoded list fails: %v", err)
		}
		if fmt.Sprint(again.commands, again.shallows) != fmt.Sprint(req.commands, req.shallows) {
			t.Fatalf("round trip changed the list:\n%v\n%v", req.commands, again.commands)
		}
		for _, c := range req.commands {
			if checkRefFormat(string(c.Name)) && strings.ContainsAny(string(c.Name), "\x00\n ") {
				t.Fatalf("checkRefFormat accepted %q", c.Name)
			}
		}
	})
}

// goldenRepo builds a small repo with fixed hashes: two commits on main, a
// branch, an annotated tag, and HEAD -> main.
func goldenRepo(t *testing.T) *Server {
	t.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := objects.New(db, objects.Limits{})
	rdb := refs.NewDB(store)
	ctx := context.Background()
	put := func(typ plumbing.ObjectType, data string) objects.Hash {
		h, err := store.Put(ctx, "golden", typ, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	blob := put(plumbing.BlobObject, "hello\n")
	tree := put(plumbing.TreeObject, "100644 hello.txt\x00"+string(blob[:]))
	id := "Tess Ter <tess@example.com> 1700000000 +0000"
	c1 := put(plumbing.CommitObject, fmt.Sprintf("tree %s\nauthor %s\ncommitter %s\n\nfirst\n", tree, id, id))
	c2 := put(plumbing.CommitObject, fmt.Sprintf("tree %s\nparent %s\nauthor %s\ncommitter %s\n\nsecond\n", tree, c1, id, id))
	tag := put(plumbing.TagObject, fmt.Sprintf("object %s\ntype commit\ntag v1\ntagger %s\n\nrelease\n", c1, id))
	if err := rdb.Update(ctx, "golden", []refs.Update{
		{Name: "refs/heads/main", New: c2},
		{Name: "refs/heads/old", New: c1},
		{Name: "refs/tags/v1", New: tag},
	}, nil, "golden"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SetSymbolic(ctx, "golden", refs.HEAD, "refs/heads/main"); err != nil {
		t.Fatal(err)
	}
	return &Server{Objects: store, Refs: rdb}
}

// TestGoldenTranscripts replays testdata/transcripts/*.txt: a header of
// "key: value" lines (service, protocol, stateless, advertise), then the
// client's pkt-lines ("> " lines), then the server's answer ("< " lines),
// which -update rewrites. Notation: "0000" flush, "0001" delim, "\0" NUL,
// "[2] text" a side-band packet, "[1] PACK <n> objects" a pack.
func TestGoldenTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/transcripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var head, client []string
			hdr := map[string]string{}
			for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
				switch {
				case strings.HasPrefix(l, "< "):
				case strings.HasPrefix(l, "> "):
					client = append(client, strings.ReplaceAll(l[2:], `\0`, "\x00"))
				default:
					head = append(head, l)
					if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, "#") {
						hdr[k] = v
					}
				}
			}
			srv := goldenRepo(t)
			sess := &Session{Repo: "golden", Service: Service(hdr["service"]), Identity: "tester",
				StatelessRPC: hdr["stateless"] == "true"}
			fmt.Sscan(hdr["protocol"], &sess.Protocol)
			var out bytes.Buffer
			if hdr["advertise"] == "true" {
				err = srv.AdvertiseRefs(context.Background(), &out, sess)
			} else {
				var in []string
				for _, c := range client {
					if c == "0000" || c == "0001" || c == "0002" {
						in = append(in, c)
					} else {
						in = append(in, strings.ReplaceAll(c, `\n`, "\n"))
					}
				}
				err = srv.Serve(context.Background(), strings.NewReader(pktStream(in...)), &out, sess)
			}
			if err != nil && hdr["error"] == "" {
				t.Fatal(err)
			}
			if hdr["error"] != "" && (err == nil || !strings.Contains(err.Error(), hdr["error"])) {
				t.Errorf("err = %v, want %q", err, hdr["error"])
			}
			got := renderTranscript(t, out.Bytes())
			var want []string
			for _, l := range strings.Split(string(raw), "\n") {
				if strings.HasPrefix(l, "< ") {
					want = append(want, l)
				}
			}
			if *updateGolden {
				var b strings.Builder
				for _, l := range head {
					b.WriteString(l + "\n")
				}
				for _, c := range client {
					b.WriteString("> " + strings.ReplaceAll(c, "\x00", `\0`) + "\n")
				}
				for _, l := range got {
					b.WriteString(l + "\n")
				}
				if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("server answered:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// renderTranscript prints a server answer in the transcript notation.
func renderTranscript(t *testing.T, b []byte) []string {
	var out []string
	pr := newPktReader(bufio.NewReader(bytes.NewReader(b)))
	var pack []byte
	endPack := func() {
		if pack != nil {
			out = append(out, fmt.Sprintf("< [1] PACK %d objects", countPack(t, pack)))
			pack = nil
		}
	}
	for {
		if peek, _ := pr.reader().Peek(4); string(peek) == "PACK" {
			// A raw pack (no side band) runs to the end.
			raw, _ := io.ReadAll(pr.reader())
			out = append(out, fmt.Sprintf("< PACK %d objects", countPack(t, raw)))
			break
		}
		k, p, err := pr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			out = append(out, fmt.Sprintf("< !! %v", err))
			break
		}
		if k == pktData && len(p) > 0 && p[0] == 1 && (pack != nil || bytes.HasPrefix(p[1:], []byte("PACK"))) {
			pack = append(pack, p[1:]...)
			continue
		}
		endPack()
		switch {
		case k == pktFlush:
			out = append(out, "< 0000")
		case k == pktDelim:
			out = append(out, "< 0001")
		case k == pktResponseEnd:
			out = append(out, "< 0002")
		case len(p) > 0 && p[0] <= 3:
			txt := strings.ReplaceAll(string(p[1:]), "\n", `\n`)
			out = append(out, fmt.Sprintf("< [%d] %s", p[0], strings.ReplaceAll(txt, "\r", `\r`)))
		default:
			out = append(out, "< "+strings.ReplaceAll(strings.TrimSuffix(string(p), "\n"), "\x00", `\0`))
		}
	}
	endPack()
	return out
}

// countPack checks a pack's trailer and returns its object count.
func countPack(t *testing.T, pack []byte) int {
	t.Helper()
	if len(pack) < 32 || string(pack[:4]) != "PACK" {
		t.Fatalf("not a pack: %q", pack)
	}
	if sum := sha1.Sum(pack[:len(pack)-20]); !bytes.Equal(sum[:], pack[len(pack)-20:]) {
		t.Fatalf("pack trailer %x, want %x", pack[len(pack)-20:], sum)
	}
	return int(pack[8])<<24 | int(pack[9])<<16 | int(pack[10])<<8 | int(pack[11])
}
