package s3

import (
	"bytes"
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
		c, err := v.Vend("team@a", ScopeRead, "", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = c
		}
		g, secret, err := v.check(c.SessionToken, c.AccessKeyID)
		if err != nil || g.Repo != "team@a" || secret != c.SecretAccessKey {
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
