package gitserver

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// limitServer is a Server with receive limits lim over an in-memory store,
// served over smart HTTP with anonymous access. The repo "demo" holds one
// commit on main, returned with the base URL.
func limitServer(t *testing.T, lim ReceiveLimits) (*Server, string, objects.Hash) {
	t.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := objects.New(db, objects.Limits{})
	rs := refs.NewDB(store)
	ctx := context.Background()
	tree, _ := store.Put(ctx, "demo", objects.Type(2), nil)
	commit, err := store.Put(ctx, "demo", objects.Type(1), []byte("tree "+tree.String()+"\nauthor A <a@b.c> 1700000000 +0000\ncommitter A <a@b.c> 1700000000 +0000\n\nfirst\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Update(ctx, "demo", []refs.Update{{Name: "refs/heads/main", New: commit}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
	s := &Server{Objects: store, Refs: rs, Receive: lim}
	a, _ := access.New(access.Config{Users: access.OpenUsers(filepath.Join(t.TempDir(), "users.json"))})
	srv := httptest.NewServer(NewHTTPHandler(s, a.WithAnonymous(true)))
	t.Cleanup(srv.Close)
	return s, srv.URL, commit
}

// emptyPack is a valid pack of no objects.
var emptyPack = func() string {
	hdr := "PACK\x00\x00\x00\x02\x00\x00\x00\x00"
	sum := sha1.Sum([]byte(hdr))
	return hdr + string(sum[:])
}()

// postReceive sends a receive-pack request body; it returns the status
// and the body, pkt-lines decoded one payload per line.
func postReceive(t *testing.T, base string, body io.Reader) (int, string, int) {
	t.Helper()
	resp, err := http.Post(base+"/demo.git/git-receive-pack", "application/x-git-receive-pack-request", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-git-receive-pack-result") {
		return resp.StatusCode, string(b), len(b)
	}
	var out strings.Builder
	pr := newPktReader(bytes.NewReader(b))
	for {
		_, p, err := pr.next()
		if err != nil {
			break
		}
		out.Write(p)
	}
	return resp.StatusCode, out.String(), len(b)
}

// commandList is n commands creating refs/heads/<prefix><i> at id, with
// caps on the first, and a flush.
func commandList(n int, prefix string, id objects.Hash, caps string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		l := fmt.Sprintf("%s %s refs/heads/%s%d", objects.ZeroHash, id, prefix, i)
		if i == 0 {
			l += "\x00" + caps
		}
		b.WriteString(pktStream(l + "\n"))
	}
	b.WriteString("0000")
	return b.String()
}

func TestReadCommandListLimits(t *testing.T) {
	a := strings.Repeat("a", 40)
	long := strings.Repeat("n", 300)
	cmds := func(n int, name string) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("%s %s refs/heads/%s%d\n", a, a, name, i))
		}
		return append(out, "0000")
	}
	for _, tc := range []struct {
		name    string
		in      []string
		lim     ReceiveLimits
		kept    int
		refused string
	}{
		{"at the command limit", cmds(3, "b"), ReceiveLimits{MaxCommands: 3}, 3, ""},
		{"over the command limit", cmds(4, "b"), ReceiveLimits{MaxCommands: 3}, 3, "too many ref updates in one push (max 3); push fewer refs at a time"},
		{"over the byte limit", cmds(4, long), ReceiveLimits{MaxCommandBytes: 1000}, 2, "command list larger than 1000 bytes"},
		{"shallow lines count", append([]string{"shallow " + a + "\n", "shallow " + a + "\n"}, cmds(1, "b")...), ReceiveLimits{MaxCommandBytes: 100}, 0, "command list larger than 100 bytes"},
		{"defaults", cmds(DefaultMaxCommands+1, "b"), ReceiveLimits{}, DefaultMaxCommands, fmt.Sprintf("too many ref updates in one push (max %d)", DefaultMaxCommands)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := readCommandList(newPktReader(strings.NewReader(pktStream(tc.in...))), tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			if req == nil {
				t.Fatal("no request")
			}
			if len(req.commands) != tc.kept || !strings.HasPrefix(req.refused, tc.refused) || (tc.refused == "") != (req.refused == "") {
				t.Fatalf("kept %d, refused %q; want %d, %q", len(req.commands), req.refused, tc.kept, tc.refused)
			}
		})
	}
	t.Run("push options", func(t *testing.T) {
		var opts []string
		for i := 0; i <= maxPushOptions; i++ {
			opts = append(opts, "param.x="+strconv.Itoa(i))
		}
		req := &pushRequest{}
		if err := readPushOptions(newPktReader(strings.NewReader(pktStream(append(opts, "0000")...))), req, ReceiveLimits{}); err != nil {
			t.Fatal(err)
		}
		if len(req.options) != maxPushOptions || req.refused != fmt.Sprintf("too many push options (max %d)", maxPushOptions) {
			t.Fatalf("kept %d options, refused %q", len(req.options), req.refused)
		}
		req = &pushRequest{size: 900}
		if err := readPushOptions(newPktReader(strings.NewReader(pktStream(strings.Repeat("o", 200), "0000"))), req, ReceiveLimits{MaxCommandBytes: 1000}); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(req.refused, "command list and push options larger than 1000 bytes") {
			t.Fatalf("refused %q", req.refused)
		}
	})
}

// A push over the command limit is refused as a whole with the limit in
// the message; the answer names only the commands up to the limit, whatever
// the client sent, and no ref moves. Its pack is read and dropped so the
// client gets the answer.
func TestReceiveRefusesLongCommandList(t *testing.T) {
	_, base, commit := limitServer(t, ReceiveLimits{MaxCommands: 4})
	long := strings.Repeat("x", 2000)
	body := commandList(50, long, commit, "report-status") + emptyPack
	status, report, size := postReceive(t, base, strings.NewReader(body))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, report)
	}
	want := "unpack too many ref updates in one push (max 4); push fewer refs at a time\n"
	if !strings.HasPrefix(report, want) {
		t.Fatalf("report:\n%.300s\nwant it to start with %q", report, want)
	}
	if n := strings.Count(report, "\nng refs/heads/"); n != 4 {
		t.Fatalf("%d ng lines, want 4 (the commands up to the limit)", n)
	}
	if strings.Contains(report, long+"4") || size > 4*len(long)+1000 {
		t.Fatalf("%d-byte answer echoes commands past the limit", size)
	}
	if _, ok := refsOf(t, base)["refs/heads/"+long+"0"]; ok {
		t.Fatal("a ref of the refused push exists")
	}
}

// refsOf lists demo's refs over HTTP (v0 advertisement).
func refsOf(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/demo.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	pr := newPktReader(bytes.NewReader(b))
	for {
		k, p, err := pr.next()
		if err != nil {
			break
		}
		if k != pktData || len(p) < 42 || p[40] != ' ' {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(string(p[41:]), "\n"), "\x00")
		out[name] = string(p[:40])
	}
	return out
}

// A push that does not get its turn in time is refused as "server busy",
// moves nothing, and a push after the turn is free goes through.
func TestReceiveServerBusy(t *testing.T) {
	s, base, commit := limitServer(t, ReceiveLimits{MaxConcurrent: 1, QueueTimeout: 20 * time.Millisecond})
	release, err := s.admit(context.Background()) // another push in progress
	if err != nil {
		t.Fatal(err)
	}
	body := commandList(1, "busy", commit, "report-status") + emptyPack
	status, report, _ := postReceive(t, base, strings.NewReader(body))
	want := "unpack server busy: too many pushes in progress, try again\nng refs/heads/busy0 server busy: too many pushes in progress, try again\n"
	if status != http.StatusOK || report != want {
		t.Fatalf("busy push: %d\n%q\nwant %q", status, report, want)
	}
	if _, ok := refsOf(t, base)["refs/heads/busy0"]; ok {
		t.Fatal("refused push created its ref")
	}
	release()
	status, report, _ = postReceive(t, base, strings.NewReader(body))
	if status != http.StatusOK || report != "unpack ok\nok refs/heads/busy0\n" {
		t.Fatalf("push after the turn freed: %d %q", status, report)
	}
}

// At most MaxConcurrent pushes hold a turn; at most 4 * MaxConcurrent
// wait for one; the rest are refused at once.
func TestPushAdmission(t *testing.T) {
	s := &Server{Receive: ReceiveLimits{MaxConcurrent: 1, QueueTimeout: time.Hour}}
	release, err := s.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			rel, err := s.admit(ctx)
			if err == nil {
				rel()
			}
			results <- err
		}()
	}
	for s.slots.waiting.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.admit(ctx); !errors.Is(err, errServerBusy) {
		t.Fatalf("fifth waiter: %v, want %v", err, errServerBusy)
	}
	release() // the waiters take the turn one after another
	for i := 0; i < 4; i++ {
		if err := <-results; err != nil {
			t.Fatalf("waiter %d: %v", i, err)
		}
	}
	cancel()
	s2 := &Server{Receive: ReceiveLimits{MaxConcurrent: 1, QueueTimeout: time.Millisecond}}
	if _, err := s2.admit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.admit(context.Background()); !errors.Is(err, errServerBusy) {
		t.Fatalf("after the queue timeout: %v", err)
	}
}

// A malformed request body is a 400 with the reason, not a 500.
func TestHTTPMalformedRequestIs400(t *testing.T) {
	_, base, commit := limitServer(t, ReceiveLimits{})
	for _, tc := range []struct {
		name, path string
		header     map[string]string
		body       []byte
		text       string
	}{
		{"receive-pack bad length", "git-receive-pack", nil, []byte("zzzz"), "malformed pkt-line: bad length"},
		{"receive-pack truncated", "git-receive-pack", nil, []byte("00ff0000"), "malformed pkt-line: truncated payload"},
		{"receive-pack malformed command", "git-receive-pack", nil, []byte(pktStream("not a command\n", "0000")), "malformed command"},
		{"receive-pack corrupt gzip", "git-receive-pack", map[string]string{"Content-Encoding": "gzip"}, append(gzipBytes([]byte("0000"))[:12], "garbage"...), "bad request"},
		{"upload-pack bad length", "git-upload-pack", nil, []byte("zzzz"), "malformed pkt-line: bad length"},
		{"upload-pack bad want", "git-upload-pack", nil, []byte(pktStream("want nothex\n", "0000")), "expected to get object ID"},
		{"upload-pack bad have", "git-upload-pack", nil, []byte(pktStream("want "+commit.String()+"\n", "0000", "have "+commit.String()+"\n", "have zz\n", "0000")), "invalid have line"},
		{"upload-pack v2 bad length", "git-upload-pack", map[string]string{"Git-Protocol": "version=2"}, []byte(pktStream("command=ls-refs\n") + "0001" + "zzzz"), "malformed pkt-line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+"/demo.git/"+tc.path, bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-"+tc.path+"-request")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.text) {
				t.Fatalf("status %d %q, want 400 containing %q", resp.StatusCode, b, tc.text)
			}
		})
	}
}

// A push that holds its turn and then sends nothing is cut off after
// ReadIdleTimeout, and its turn goes to the next push (which would
// otherwise be refused as "server busy" after its 2 s in line).
func TestStalledPushLosesItsTurn(t *testing.T) {
	s, base, commit := limitServer(t, ReceiveLimits{MaxConcurrent: 1, QueueTimeout: 2 * time.Second})
	s.ReadIdleTimeout = 100 * time.Millisecond
	rel, _ := s.admit(context.Background()) // sets the slots up here, before other goroutines read them
	rel()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(commandList(1, "stalled", commit, "report-status") + "PACK\x00\x00\x00\x02\x00\x00\x00\x01"))
	go func() {
		if resp, err := http.Post(base+"/demo.git/git-receive-pack", "application/x-git-receive-pack-request", pr); err == nil {
			resp.Body.Close()
		}
	}()
	for len(s.slots.slots) == 0 {
		time.Sleep(time.Millisecond) // until the stalled push holds the turn
	}
	body := commandList(1, "next", commit, "report-status") + emptyPack
	if status, report, _ := postReceive(t, base, strings.NewReader(body)); status != http.StatusOK || report != "unpack ok\nok refs/heads/next0\n" {
		t.Fatalf("push after a stalled one: %d %q", status, report)
	}
	if _, ok := refsOf(t, base)["refs/heads/stalled0"]; ok {
		t.Fatal("the stalled push created its ref")
	}
}
