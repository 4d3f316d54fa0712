package access

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// Identity is who a request acts as: Anonymous, a user name, or
// "key:SHA256:<fingerprint>" for a key of the --authorized-keys file.
type Identity string

// Anonymous is the identity of a client that presented no credentials.
const Anonymous Identity = "anonymous"

// keyIdentityPrefix starts the identity of a key from the authorized_keys
// file. ':' cannot occur in a user name, so the two never collide.
const keyIdentityPrefix = "key:"

// String returns the identity as text.
func (id Identity) String() string { return string(id) }

// IsAnonymous reports whether id is nobody in particular.
func (id Identity) IsAnonymous() bool { return id == Anonymous || id == "" }

// isKey reports whether id is a key of the authorized_keys file.
func (id Identity) isKey() bool { return strings.HasPrefix(string(id), keyIdentityPrefix) }

// Permission is what an identity may do with a repo.
type Permission int

// Permissions, ordered: each includes the ones before it.
const (
	PermNone  Permission = iota // nothing
	PermRead                    // fetch and clone
	PermWrite                   // push, and create the repo on first push
)

// String returns "none", "read" or "write".
func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	}
	return "none"
}

// ParsePermission parses "none", "read" or "write".
func ParsePermission(s string) (Permission, error) {
	switch s {
	case "none":
		return PermNone, nil
	case "read":
		return PermRead, nil
	case "write":
		return PermWrite, nil
	}
	return PermNone, fmt.Errorf("access: unknown permission %q (want read, write or none)", s)
}

// MarshalText writes the permission's name.
func (p Permission) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a permission's name.
func (p *Permission) UnmarshalText(b []byte) error {
	v, err := ParsePermission(string(b))
	*p = v
	return err
}

var userNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidUserName reports whether name may name a user. "anonymous" is reserved.
func ValidUserName(name string) bool {
	return userNameRE.MatchString(name) && name != string(Anonymous)
}

// IsLoopback reports whether a listener bound to addr is reachable only
// from this machine (127.0.0.0/8 or ::1). An unspecified address
// (0.0.0.0, ::) is not loopback.
func IsLoopback(addr net.Addr) bool {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return false
		}
		ip = net.ParseIP(host)
	}
	return ip != nil && ip.IsLoopback()
}
