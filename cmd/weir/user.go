package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/access"
)

const userUsage = `usage: weir user <subcommand> [--data DIR] ...

  weir user add NAME --key FILE     add a user (or a key to a user); FILE holds
                                    OpenSSH public keys, one a line ("-" = stdin)
  weir user token NAME [--name L]   make a new HTTP token for NAME and print it
                                    (only its SHA-256 is kept); L says what it is for
  weir user token ls NAME           list NAME's tokens: id, created, name
                                    (also: weir user tokens NAME)
  weir user token revoke NAME ID    revoke one token: a running server refuses
                                    it from the next request on (also: weir
                                    user revoke NAME ID)
  weir user admin NAME on|off       let NAME run these admin commands over SSH
  weir user grant NAME REPO PERM    PERM is read, write or none; REPO may be '*'
  weir user priority NAME N         the highest run priority NAME may ask for
                                    with git push -o priority=N (0-9; default 0)
  weir user list                    users, key fingerprints, token counts, grants,
                                    max priority
  weir user remove NAME             delete a user

Users are stored in <data>/users.json (mode 0600); a running server picks up
changes at once. They matter only on non-loopback listeners: on loopback
everyone may read and write (branch rules, 'weir rule', apply everywhere).
An admin runs the same commands on a running server from anywhere:
ssh -p 7422 HOST weir user ... (no --data; --key - reads stdin).

flags:
`

// runUser is "weir user" offline.
func runUser(args []string) error { return runOfflineAdmin(userAdmin, args) }

// userAdmin is "weir user", offline and over SSH.
var userAdmin = adminCommand{name: "user", usage: userUsage, define: defineUser}

func defineUser(fs *flag.FlagSet) func(context.Context, *adminEnv, []string) error {
	key := fs.String("key", "", `user add: file with the user's OpenSSH public key(s); "-" = stdin (over SSH, only "-")`)
	label := fs.String("name", "", "user token: what the token is for (shown by 'weir user token ls')")
	return func(_ context.Context, env *adminEnv, pos []string) error {
		return userCommand(env, pos, *key, *label)
	}
}

// userCommand runs one "weir user" subcommand on env.Users.
func userCommand(env *adminEnv, pos []string, key, label string) error {
	if len(pos) == 0 {
		env.usage()
		return errors.New("missing subcommand")
	}
	users := env.Users
	out := env.Out
	want := func(n int, form string) error {
		if len(pos) != n+1 {
			return fmt.Errorf("usage: weir user %s", form)
		}
		return nil
	}
	listTokens := func(name string) error {
		list, err := users.Tokens(name)
		if err != nil {
			return err
		}
		for _, t := range list {
			fmt.Fprintf(out, "%s\t%s\t%s\n", t.ID, t.Created.Format(time.RFC3339), t.Name)
		}
		return nil
	}
	revoke := func(name, id string) error {
		if err := users.RevokeToken(name, id); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s: token %s revoked\n", name, id)
		return nil
	}
	var err error
	switch pos[0] {
	case "add":
		if err := want(1, "add NAME --key FILE"); err != nil {
			return err
		}
		var keys []string
		if key != "" {
			var b []byte
			switch {
			case key == "-":
				b, err = io.ReadAll(io.LimitReader(env.Stdin, 1<<20))
			case env.Online:
				return fmt.Errorf("--key %s: over SSH the keys come on stdin: --key - < %s", key, filepath.Base(key))
			default:
				b, err = os.ReadFile(key)
			}
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					keys = append(keys, line)
				}
			}
			if len(keys) == 0 {
				return fmt.Errorf("%s holds no public key", key)
			}
		}
		if err := users.AddUser(pos[1], keys...); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s: %d key(s) added\n", pos[1], len(keys))
	case "token":
		switch {
		case len(pos) == 3 && pos[1] == "ls":
			return listTokens(pos[2])
		case len(pos) == 4 && pos[1] == "revoke":
			return revoke(pos[2], pos[3])
		}
		if err := want(1, "token NAME [--name LABEL] | token ls NAME | token revoke NAME ID"); err != nil {
			return err
		}
		tok, id, err := users.NewToken(pos[1], label)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, tok)
		fmt.Fprintf(env.Err, "token %s for %s: shown once; revoke it with 'weir user token revoke %s %s'\n", id, pos[1], pos[1], id)
	case "tokens":
		if err := want(1, "tokens NAME"); err != nil {
			return err
		}
		return listTokens(pos[1])
	case "revoke":
		if err := want(2, "revoke NAME TOKEN-ID"); err != nil {
			return err
		}
		return revoke(pos[1], pos[2])
	case "admin":
		if err := want(2, "admin NAME on|off"); err != nil {
			return err
		}
		if pos[2] != "on" && pos[2] != "off" {
			return fmt.Errorf("admin %s: want on or off", pos[2])
		}
		if err := users.SetAdmin(pos[1], pos[2] == "on"); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s: admin %s\n", pos[1], pos[2])
	case "grant":
		if err := want(3, "grant NAME REPO read|write|none"); err != nil {
			return err
		}
		p, err := access.ParsePermission(pos[3])
		if err != nil {
			return err
		}
		if err := users.Grant(pos[1], pos[2], p); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s: %s on %s\n", pos[1], p, pos[2])
	case "priority":
		if err := want(2, "priority NAME N"); err != nil {
			return err
		}
		n, err := strconv.Atoi(pos[2])
		if err != nil {
			return fmt.Errorf("priority %q: want a number from 0 to %d", pos[2], access.MaxPriority)
		}
		if err := users.SetMaxPriority(pos[1], n); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s: may ask for run priority up to %d\n", pos[1], n)
	case "list":
		if err := want(0, "list"); err != nil {
			return err
		}
		list, err := users.List()
		if err != nil {
			return err
		}
		for _, u := range list {
			var grants []string
			for r, p := range u.Grants {
				grants = append(grants, r+"="+p.String())
			}
			sort.Strings(grants)
			admin := ""
			if u.Admin {
				admin = "\tadmin"
			}
			fmt.Fprintf(out, "%s\tkeys=%s\ttokens=%d\tgrants=%s\tmax-priority=%d%s\n", u.Name, strings.Join(u.Keys, ","), u.Tokens, strings.Join(grants, ","), u.MaxPriority, admin)
		}
	case "remove":
		if err := want(1, "remove NAME"); err != nil {
			return err
		}
		if err := users.RemoveUser(pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s removed\n", pos[1])
	default:
		env.usage()
		return fmt.Errorf("unknown subcommand %q", pos[0])
	}
	return nil
}
