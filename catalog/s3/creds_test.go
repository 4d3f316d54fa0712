package s3

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestSeenTokens checks the cache of verified tokens: it stays within
// maxSeen, every token still checks after it was emptied, and a cached
// token is still refused once expired or under another access key id.
func TestSeenTokens(t *testing.T) {
	v := NewVendor(bytes.Repeat([]byte{7}, 32))
	var first Credentials
	for i := range maxSeen + 10 {
		seg := fmt.Sprintf("team%d@a", i) // a distinct grant each time
		c, err := v.Vend(seg, ScopeRead, "", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = c
		}
		g, secret, err := v.check(c.SessionToken, c.AccessKeyID)
		if err != nil || g.Repo != seg || secret != c.SecretAccessKey {
			t.Fatalf("token %d: %v, %v, secret matches %t", i, g, err, secret == c.SecretAccessKey)
		}
		if len(v.seen) > maxSeen {
			t.Fatalf("%d tokens kept, want at most %d", len(v.seen), maxSeen)
		}
	}
	for range 2 { // once to cache it, once from the cache
		if _, _, err := v.check(first.SessionToken, first.AccessKeyID); err != nil {
			t.Fatalf("first token after the cache was emptied: %v", err)
		}
	}
	if _, _, err := v.check(first.SessionToken, "WEIRXXXXXXXXXXXXXXXX"); err != errKeyID {
		t.Errorf("cached token, another key id: %v, want errKeyID", err)
	}
	v.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, _, err := v.check(first.SessionToken, first.AccessKeyID); err != errExpired {
		t.Errorf("cached token past its expiry: %v, want errExpired", err)
	}
}

// TestVendWindows: credentials vended within one expiry window (a quarter
// of the TTL) are the same, so a load's ETag holds (304); the next window
// vends new ones; each lives at least the TTL and at most 1.25 of it.
func TestVendWindows(t *testing.T) {
	v := NewVendor(bytes.Repeat([]byte{7}, 32))
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) Credentials {
		t.Helper()
		v.now = func() time.Time { return base.Add(d) }
		c, err := v.Vend("team@a", ScopeRead, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if live := c.Expires.Sub(base.Add(d)); live < time.Hour || live > time.Hour+15*time.Minute {
			t.Fatalf("vended at +%s: lives %s, want 1h to 1h15m", d, live)
		}
		return c
	}
	a, b := at(time.Second), at(14*time.Minute)
	if a != b {
		t.Fatalf("two vends in one window differ:\n%+v\n%+v", a, b)
	}
	if c := at(15*time.Minute + time.Second); c.SessionToken == a.SessionToken || c.AccessKeyID == a.AccessKeyID {
		t.Fatal("the next window vends the same credentials")
	}
	if w := at(time.Second); w.SessionToken != a.SessionToken {
		t.Fatal("vending is not a function of grant and window")
	}
	v.now = func() time.Time { return base.Add(time.Second) }
	if _, _, err := v.check(a.SessionToken, a.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if w, err := v.Vend("team@a", ScopeWrite, "team@a/ns/t/", time.Hour); err != nil || w.SessionToken == a.SessionToken {
		t.Fatalf("a write grant in the same window: %v, same token as the read grant %t", err, w.SessionToken == a.SessionToken)
	}
}
