package objects

import (
	"context"
	"encoding/hex"
	"fmt"
)

// MinPrefix is the shortest abbreviated object name WithPrefix takes
// (git's core.abbrev floor).
const MinPrefix = 4

// WithPrefix returns the objects of repo whose hex name starts with
// prefix (lower or upper case, MinPrefix to 40 hex digits) and their
// types, at most max of them (max <= 0: 16). It reads one key range:
// 'o' <repo> 0x00 <the prefix's whole bytes>, filtering an odd last
// nibble; objects still in a quarantine are not seen.
func (s *Store) WithPrefix(ctx context.Context, repo RepoName, prefix string, max int) ([]Hash, []Type, error) {
	if len(prefix) < MinPrefix || len(prefix) > 40 {
		return nil, nil, fmt.Errorf("objects: abbreviated name %q: want %d to 40 hex digits", prefix, MinPrefix)
	}
	even := prefix[:len(prefix)&^1]
	whole, err := hex.DecodeString(even)
	if err != nil {
		return nil, nil, fmt.Errorf("objects: abbreviated name %q is not hex", prefix)
	}
	var nib byte
	odd := len(prefix)%2 == 1
	if odd {
		v, ok := hexNibble(prefix[len(prefix)-1])
		if !ok {
			return nil, nil, fmt.Errorf("objects: abbreviated name %q is not hex", prefix)
		}
		nib = v
	}
	if max <= 0 {
		max = 16
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	lo := append(append(append([]byte{'o'}, repo...), 0), whole...)
	hi := upperBound(lo)
	it, err := s.db.NewIter(lo, hi)
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	var hs []Hash
	var ts []Type
	base := len(repo) + 2
	for it.First(); it.Valid() && len(hs) < max; it.Next() {
		k := it.Key()
		if len(k) != base+20 {
			continue
		}
		if odd && k[base+len(whole)]>>4 != nib {
			continue
		}
		v, err := it.Value()
		if err != nil {
			return nil, nil, err
		}
		var h Hash
		copy(h[:], k[base:])
		hs = append(hs, h)
		ts = append(ts, valueType(v))
	}
	return hs, ts, nil
}

// upperBound is the smallest key greater than every key starting with p.
func upperBound(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
