package rest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog/rest"
	"github.com/weir-dev/weir/objects"
)

// TestTableCredentials: load table answers what WithTableCredentials
// vends, asking for write credentials only for a branch the identity may
// write: never for a commit, nor when RepoAccess refuses the write; a
// vendor with nothing to vend leaves the warehouse's ReaderProps.
func TestTableCredentials(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	head := s.head(t, "main")
	type call struct {
		repo      objects.RepoName
		loc       string
		write, ok bool
	}
	var calls []call
	mayWrite, vend := true, true
	h := rest.NewRESTHandler(s.cat,
		rest.WithRepoAccess(func(id access.Identity, r objects.RepoName, branch string, write bool) error {
			if write && !mayWrite {
				return errors.New("no")
			}
			return nil
		}),
		rest.WithTableCredentials(func(r objects.RepoName, loc string, write bool) (iceberg.Properties, bool, error) {
			calls = append(calls, call{r, loc, write, vend})
			if !vend {
				return nil, false, nil
			}
			return iceberg.Properties{"s3.access-key-id": "K" + strconv.FormatBool(write)}, true, nil
		}))
	load := func(rev string) map[string]string {
		req := httptest.NewRequest("GET", "/v1/team%2Fdemo/"+rev+"/namespaces/sales/tables/orders", nil)
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("load at %s: %d %s", rev, rec.Code, rec.Body)
		}
		var out struct {
			Config map[string]string `json:"config"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		return out.Config
	}
	for _, tc := range []struct {
		name, rev      string
		mayWrite, vend bool
		wantKey        string
		wantWriteAsked bool
	}{
		{"branch, writer", "main", true, true, "Ktrue", true},
		{"branch, reader", "main", false, true, "Kfalse", false},
		{"commit", head.String(), true, true, "Kfalse", false},
		{"nothing to vend", "main", true, false, "", true},
	} {
		mayWrite, vend, calls = tc.mayWrite, tc.vend, nil
		cfg := load(tc.rev)
		if cfg["s3.access-key-id"] != tc.wantKey || len(calls) != 1 || calls[0].write != tc.wantWriteAsked ||
			calls[0].repo != repo || calls[0].loc == "" {
			t.Errorf("%s: config %v, vendor calls %+v", tc.name, cfg, calls)
		}
	}
}
