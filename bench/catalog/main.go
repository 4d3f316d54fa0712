// Command catalog benchmarks Weir's data catalog and prints figures with a
// named peer measured in the same run:
//
//   - data branch creation p50/p99 over N branches, with 1 table and with
//     10k tables on the source branch (must be flat: a branch is one ref);
//   - one-table append commit through the Iceberg REST catalog (iceberg-go's
//     own client against Weir's handler on loopback), p50/p99;
//   - 32 concurrent writers to 32 tables and to 1 table: commits/s, client
//     retries (409 CommitFailed) and server CAS rebuilds per commit, and
//     the CPU time per commit of the server and of the writers' process
//     (which the load of a shared machine skews far less than the rate);
//   - appending a 10M-row Arrow table through Weir (iceberg-go writes the
//     Parquet, Weir commits) vs DuckDB COPY ... TO 'x.parquet' of the same
//     rows: seconds and ratio.
//
// Run: go run ./bench/catalog [-branches 10000] [-rows 10000000]
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the REST client
	"github.com/apache/iceberg-go/table"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/bench/internal/host"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/catalog/rest"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

const repo = objects.RepoName("bench/demo")

type env struct {
	objs *objects.Store
	refs *refs.DB
	cat  *catalog.Catalog
	srv  *httptest.Server
	c409 atomic.Int64
	dir  string

	mu      sync.Mutex
	commits []time.Duration // server time of each table commit request
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func newEnv(dir string) *env {
	db, err := pebblekv.Open(filepath.Join(dir, "pebble"), nil)
	must(err)
	objs := objects.New(db, objects.Limits{})
	rs := refs.NewDB(objs)
	wh, err := catalog.NewLocalWarehouse(filepath.Join(dir, "warehouse"))
	must(err)
	e := &env{objs: objs, refs: rs, cat: catalog.New(objs, rs, wh), dir: dir}
	ctx := context.Background()
	tree, err := objs.Put(ctx, repo, plumbing.TreeObject, nil)
	must(err)
	code, err := objs.Put(ctx, repo, plumbing.CommitObject, []byte("tree "+tree.String()+"\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\ncode\n"))
	must(err)
	must(rs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", New: code}}, nil, "bench"))
	h := rest.NewRESTHandler(e.cat, rest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	e.srv = httptest.NewServer(http.StripPrefix("/iceberg", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &status{ResponseWriter: w}
		t0 := time.Now()
		h.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/tables/") {
			e.mu.Lock()
			e.commits = append(e.commits, time.Since(t0))
			e.mu.Unlock()
		}
		if rec.code == http.StatusConflict {
			e.c409.Add(1)
		}
	})))
	return e
}

type status struct {
	http.ResponseWriter
	code int
}

func (s *status) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }

func (e *env) client(branch string) icebergcat.Catalog {
	c, err := icebergcat.Load(context.Background(), "weir", iceberg.Properties{"type": "rest", "uri": e.srv.URL + "/iceberg", "warehouse": string(repo) + "@" + branch})
	must(err)
	return c
}

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

// sourceWithTables writes a data commit with n tables directly as Git
// objects (pointer blobs, per-namespace trees) and points branch at it.
func (e *env) sourceWithTables(branch string, n int) {
	ctx := context.Background()
	type ent struct {
		name string
		mode string
		h    objects.Hash
	}
	enc := func(es []ent) []byte {
		sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
		var b strings.Builder
		for _, x := range es {
			b.WriteString(x.mode + " " + x.name + "\x00")
			b.Write(x.h[:])
		}
		return []byte(b.String())
	}
	var tabs []ent
	for i := range n {
		p := catalog.Pointer{Table: catalog.TableName{Namespace: "ns", Name: fmt.Sprintf("t%05d", i)}, MetadataLocation: "file:///x", Schema: "id:long"}
		h, err := e.objs.Put(ctx, repo, plumbing.BlobObject, p.Marshal())
		must(err)
		tabs = append(tabs, ent{p.Table.Name, "100644", h})
	}
	nsTree, err := e.objs.Put(ctx, repo, plumbing.TreeObject, enc(tabs))
	must(err)
	tablesTree, err := e.objs.Put(ctx, repo, plumbing.TreeObject, enc([]ent{{"ns", "40000", nsTree}}))
	must(err)
	root, err := e.objs.Put(ctx, repo, plumbing.TreeObject, enc([]ent{{"tables", "40000", tablesTree}}))
	must(err)
	commit, err := e.objs.Put(ctx, repo, plumbing.CommitObject, []byte("tree "+root.String()+"\nauthor Weir <weir@localhost> 1700000000 +0000\ncommitter Weir <weir@localhost> 1700000000 +0000\n\nweir: bench\n"))
	must(err)
	must(e.refs.Update(ctx, repo, []refs.Update{{Name: catalog.DataRef(branch), New: commit}}, nil, "bench"))
}

func benchBranches(e *env, src string, n int) (p50, p99 time.Duration) {
	ctx := context.Background()
	ds := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		_, err := e.cat.CreateBranch(ctx, repo, fmt.Sprintf("%s-b%05d", src, i), src)
		ds = append(ds, time.Since(t0))
		must(err)
	}
	return pct(ds, 0.5), pct(ds, 0.99)
}

var schema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
	iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 3, Name: "amount", Type: iceberg.PrimitiveTypes.Float64},
)

var arrowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

func arrowRows(from, n int) arrow.Table {
	var recs []arrow.RecordBatch
	const chunk = 1 << 20
	for off := from; off < from+n; off += chunk {
		m := min(chunk, from+n-off)
		b := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema)
		ib, sb, fb := b.Field(0).(*array.Int64Builder), b.Field(1).(*array.StringBuilder), b.Field(2).(*array.Float64Builder)
		ib.Reserve(m)
		fb.Reserve(m)
		for i := off; i < off+m; i++ {
			ib.UnsafeAppend(int64(i))
			sb.Append("n" + fmt.Sprint(i))
			fb.UnsafeAppend(float64(i) * 1.5)
		}
		recs = append(recs, b.NewRecordBatch())
		b.Release()
	}
	t := array.NewTableFromRecords(arrowSchema, recs)
	for _, r := range recs {
		r.Release()
	}
	return t
}

func createTables(cat icebergcat.Catalog, ns string, n int) {
	ctx := context.Background()
	must(cat.CreateNamespace(ctx, table.Identifier{ns}, nil))
	for i := range n {
		_, err := cat.CreateTable(ctx, table.Identifier{ns, fmt.Sprintf("t%02d", i)}, schema, icebergcat.WithProperties(iceberg.Properties{
			table.CommitNumRetriesKey: "100", table.CommitMinRetryWaitMsKey: "1", table.CommitMaxRetryWaitMsKey: "50", table.CommitTotalRetryTimeoutMsKey: "600000",
		}))
		must(err)
	}
}

// benchAppendLatency returns the p50/p99 of iceberg-go's AppendTable
// (client Parquet, manifest and manifest list writes, the REST commit, the
// client's parse of the answer) and of the commit request alone, as the
// server spends it.
func benchAppendLatency(e *env, n int) (p50, p99, c50, c99 time.Duration) {
	ctx := context.Background()
	cat := e.client("main")
	createTables(cat, "lat", 1)
	tbl, err := cat.LoadTable(ctx, table.Identifier{"lat", "t00"})
	must(err)
	rows := arrowRows(0, 10)
	defer rows.Release()
	ds := make([]time.Duration, 0, n)
	e.mu.Lock()
	e.commits = nil
	e.mu.Unlock()
	for range n {
		t0 := time.Now()
		tbl, err = tbl.AppendTable(ctx, rows, 100, nil)
		ds = append(ds, time.Since(t0))
		must(err)
	}
	e.mu.Lock()
	cs := e.commits
	e.mu.Unlock()
	return pct(ds, 0.5), pct(ds, 0.99), pct(cs, 0.5), pct(cs, 0.99)
}

// benchWriters runs `writers` concurrent appenders against the REST
// catalog, spread over `tables` tables, in a child process (as real
// clients are: not sharing the server's Go runtime), and checks that every
// acknowledged append's rows are in the tables.
func benchWriters(e *env, ns string, writers, tables, perWriter int) (perSec float64, retries409, casRetries, rebases, failed int64, serverCPU, clientCPU time.Duration) {
	ctx := context.Background()
	cat := e.client("main")
	createTables(cat, ns, tables)
	before409, beforeCAS, beforeRB := e.c409.Load(), e.cat.CASRetries(), e.cat.Rebases()
	exe, err := os.Executable()
	must(err)
	_, cpu0 := host.CPUUsed()
	cmd := exec.Command(exe, "-writers-client", e.srv.URL+"/iceberg", "-writers-ns", ns,
		"-writers", strconv.Itoa(writers), "-writers-tables", strconv.Itoa(tables), "-per-writer", strconv.Itoa(perWriter))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	must(err)
	var res writersResult
	must(json.Unmarshal(out, &res))
	_, cpu1 := host.CPUUsed()
	serverCPU, clientCPU = cpu1-cpu0, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()
	fmt.Fprintf(os.Stderr, "writers process: %.1fs wall, %.1fs CPU; server process %.1fs CPU\n", res.Seconds, clientCPU.Seconds(), serverCPU.Seconds())
	// No lost commit: every acknowledged append's rows are in the tables.
	var total int64
	for i := range tables {
		tbl, err := cat.LoadTable(ctx, table.Identifier{ns, fmt.Sprintf("t%02d", i)})
		must(err)
		n, err := tbl.Scan().ToArrowTable(ctx)
		must(err)
		total += n.NumRows()
		n.Release()
	}
	if want := res.OK * writerRows; total != want {
		must(fmt.Errorf("lost commits: %d acknowledged appends of %d rows, but the tables hold %d rows", res.OK, writerRows, total))
	}
	return float64(res.OK) / res.Seconds, e.c409.Load() - before409, e.cat.CASRetries() - beforeCAS, e.cat.Rebases() - beforeRB, res.Failed, serverCPU, clientCPU
}

const writerRows = 10

type writersResult struct {
	OK, Failed int64
	Seconds    float64
}

// writersClient is the child process of benchWriters: it appends through
// iceberg-go's REST client and prints a writersResult.
func writersClient(uri, ns string, writers, tables, perWriter int) {
	ctx := context.Background()
	rows := arrowRows(0, writerRows)
	defer rows.Release()
	var (
		wg   sync.WaitGroup
		fail atomic.Int64
		ok   atomic.Int64
	)
	t0 := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": uri, "warehouse": string(repo) + "@main"})
			must(err)
			tbl, err := c.LoadTable(ctx, table.Identifier{ns, fmt.Sprintf("t%02d", w%tables)})
			must(err)
			for range perWriter {
				// A commit that exhausts its retries fails: counted, not
				// fatal. The table the append returns is the next base,
				// as a streaming writer keeps it.
				next, err := tbl.AppendTable(ctx, rows, 100, nil)
				if err != nil {
					if fail.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "bench: first failed append:", err)
					}
					continue
				}
				tbl = next
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	must(json.NewEncoder(os.Stdout).Encode(writersResult{OK: ok.Load(), Failed: fail.Load(), Seconds: time.Since(t0).Seconds()}))
}

var bulkCodec *string

// bulkCommit is the server's time in the bulk append's commit request(s).
var bulkCommit time.Duration

func benchBulk(e *env, rows int) (weir, duck time.Duration) {
	ctx := context.Background()
	cat := e.client("main")
	must(cat.CreateNamespace(ctx, table.Identifier{"bulk"}, nil))
	// The same Parquet codec as DuckDB's COPY default (snappy; iceberg-go
	// defaults to zstd), so both write the same kind of file.
	tbl, err := cat.CreateTable(ctx, table.Identifier{"bulk", "t00"}, schema, icebergcat.WithProperties(iceberg.Properties{
		table.ParquetCompressionKey: *bulkCodec,
	}))
	must(err)
	at := arrowRows(0, rows)
	e.mu.Lock()
	e.commits = nil
	e.mu.Unlock()
	t0 := time.Now()
	tbl, err = tbl.AppendTable(ctx, at, 1<<17, nil)
	weir = time.Since(t0)
	at.Release()
	must(err)
	e.mu.Lock()
	for _, c := range e.commits {
		bulkCommit += c
	}
	e.mu.Unlock()
	if n := tbl.CurrentSnapshot().Summary.Properties["total-records"]; n != fmt.Sprint(rows) {
		must(fmt.Errorf("weir appended %s rows, want %d", n, rows))
	}
	db, err := sql.Open("duckdb", "")
	must(err)
	defer db.Close()
	out := filepath.Join(e.dir, "duck.parquet")
	// Like the Arrow table for Weir, the rows are built before the clock
	// starts: only COPY ... TO parquet is timed.
	_, err = db.Exec(fmt.Sprintf(`CREATE TABLE src AS SELECT i::BIGINT AS id, 'n' || i AS name, i * 1.5 AS amount FROM range(%d) t(i)`, rows))
	must(err)
	t0 = time.Now()
	_, err = db.Exec(fmt.Sprintf(`COPY src TO '%s' (FORMAT parquet)`, out))
	duck = time.Since(t0)
	must(err)
	return weir, duck
}

func main() {
	branches := flag.Int("branches", 10000, "branches to create per source (0: skip)")
	tables := flag.Int("tables", 10000, "tables on the large source branch")
	appends := flag.Int("appends", 200, "appends for the REST latency figure")
	perWriter := flag.Int("per-writer", 3, "appends per writer in the 32-writer runs")
	rows := flag.Int("rows", 10_000_000, "rows for the bulk append vs DuckDB (0: skip)")
	bulkCodec = flag.String("bulk-codec", "snappy", "Parquet codec of Weir's bulk append (DuckDB COPY writes snappy)")
	onlyBulk := flag.Bool("only-bulk", false, "run only the bulk append vs DuckDB")
	onlyWriters := flag.Bool("only-writers", false, "run only the concurrent writers")
	wClient := flag.String("writers-client", "", "internal: run the concurrent writers against this REST URI")
	wNS := flag.String("writers-ns", "", "internal: namespace of -writers-client")
	wN := flag.Int("writers", 32, "concurrent writers")
	wTables := flag.Int("writers-tables", 1, "internal: tables of -writers-client")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *wClient != "" {
		writersClient(*wClient, *wNS, *wN, *wTables, *perWriter)
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "weir-bench-catalog-")
	must(err)
	defer os.RemoveAll(dir)
	e := newEnv(dir)
	defer e.srv.Close()
	fmt.Printf("weir bench/catalog (on-disk Pebble in %s, synced ref updates)\n\n", dir)

	if *branches > 0 {
		e.sourceWithTables("small", 1)
		e.sourceWithTables("large", *tables)
		p50, p99 := benchBranches(e, "small", *branches)
		fmt.Printf("branch creation, source with 1 table:      p50 %8v  p99 %8v  (%d branches)\n", p50, p99, *branches)
		q50, q99 := benchBranches(e, "large", *branches)
		fmt.Printf("branch creation, source with %d tables: p50 %8v  p99 %8v  (ratio p50 large/small %.2f)\n", *tables, q50, q99, float64(q50)/float64(p50))
	}

	if *onlyBulk {
		w, d := benchBulk(e, *rows)
		fmt.Printf("append %d rows: Weir (iceberg-go Parquet + REST commit) %v, DuckDB COPY TO parquet %v, ratio Weir/DuckDB %.2f (of Weir's, the commit request in the server %v)\n", *rows, w.Round(time.Millisecond), d.Round(time.Millisecond), float64(w)/float64(d), bulkCommit.Round(time.Millisecond))
		return
	}
	if *onlyWriters {
		*appends, *rows = 0, 0
	}
	if *appends > 0 {
		a50, a99, c50, c99 := benchAppendLatency(e, *appends)
		fmt.Printf("REST one-table append (iceberg-go AppendTable, 10 rows): p50 %v  p99 %v; its commit request in the server: p50 %v  p99 %v  (%d appends)\n", a50, a99, c50, c99, *appends)
	}

	for _, tc := range []struct {
		ns     string
		tables int
	}{{"w32", *wN}, {"w1", 1}} {
		cps, r409, cas, rb, failed, sCPU, cCPU := benchWriters(e, tc.ns, *wN, tc.tables, *perWriter)
		n := float64(*wN**perWriter) - float64(failed)
		fmt.Printf("%d writers -> %2d table(s): %6.1f commits/s, client retries (409) %.2f/commit, server rebases %.2f/commit, server CAS rebuilds %.2f/commit, failed %d of %d, rows all present\n", *wN, tc.tables, cps, float64(r409)/n, float64(rb)/n, float64(cas)/n, failed, *wN**perWriter)
		// On a shared machine the wall-clock rate follows the load; the
		// CPU each commit costs does much less.
		fmt.Printf("    CPU per commit: server %v, writers' client (iceberg-go AppendTable) %v\n", (sCPU / time.Duration(n)).Round(10*time.Microsecond), (cCPU / time.Duration(n)).Round(10*time.Microsecond))
	}

	if *rows > 0 {
		w, d := benchBulk(e, *rows)
		fmt.Printf("append %d rows: Weir (iceberg-go Parquet + REST commit) %v, DuckDB COPY TO parquet %v, ratio Weir/DuckDB %.2f (of Weir's, the commit request in the server %v)\n", *rows, w.Round(time.Millisecond), d.Round(time.Millisecond), float64(w)/float64(d), bulkCommit.Round(time.Millisecond))
	}
}
