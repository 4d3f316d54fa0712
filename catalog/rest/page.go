package rest

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/catalog"
)

// Pagination of list namespaces and list tables, as the spec has it: a
// request without the pageToken parameter gets every result at once; one
// with it (empty for the first page) gets at most pageSize results
// (default DefaultPageSize, at most MaxPageSize) and, when more remain, a
// next-page-token to send as the next pageToken. next-page-token is null
// on the last page.
//
// A token is opaque to clients. It is the listing it belongs to and the
// last name returned, base64url-encoded:
//
//	"v1" 0x00 <listing> 0x00 <last name>
//	<listing> = "tables" 0x00 <namespace> | "namespaces" 0x00 <parent>
//
// Listings are sorted by name and a page starts after the token's name, so
// paging while tables are created or dropped never repeats a name and
// never skips one that existed throughout. A token that does not decode,
// or belongs to another listing, is a 400.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// page is one request's pagination: on=false returns everything.
type page struct {
	on      bool
	listing string
	after   string
	size    int
}

func parsePage(r *http.Request, listing string) (page, error) {
	q := r.URL.Query()
	pg := page{listing: listing, size: DefaultPageSize}
	if v, ok := q["pageSize"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 {
			return pg, badRequest("pageSize %q: want a positive integer", v[0])
		}
		pg.size = min(n, MaxPageSize)
	}
	v, ok := q["pageToken"]
	if !ok {
		return pg, nil
	}
	pg.on = true
	if v[0] == "" {
		return pg, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(v[0])
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 4 || parts[0] != "v1" {
		return pg, badRequest("pageToken %q is not a page token this server issued (start again without one, or with an empty one)", v[0])
	}
	if parts[1]+"\x00"+parts[2] != listing {
		return pg, badRequest("pageToken %q belongs to another listing (start again with an empty one)", v[0])
	}
	if err := catalog.ValidateName(parts[3]); err != nil {
		return pg, badRequest("pageToken %q is not a page token this server issued: %v", v[0], err)
	}
	pg.after = parts[3]
	return pg, nil
}

// cut returns the page of sorted names and the next page token (nil on
// the last page and when pagination is off).
func (pg page) cut(names []string) ([]string, *string) {
	if !pg.on {
		return names, nil
	}
	sort.Strings(names)
	start := sort.SearchStrings(names, pg.after)
	if start < len(names) && names[start] == pg.after {
		start++
	}
	names = names[start:]
	if len(names) <= pg.size {
		return names, nil
	}
	names = names[:pg.size]
	tok := base64.RawURLEncoding.EncodeToString([]byte("v1\x00" + pg.listing + "\x00" + names[len(names)-1]))
	return names, &tok
}
