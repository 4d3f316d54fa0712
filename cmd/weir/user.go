package main

import (
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
  weir user tokens NAME             list NAME's tokens: id, created, name
  weir user revoke NAME ID          revoke one token (a running server refuses
                                    it at once)
  weir user grant NAME REPO PERM    PERM is read, write or none; REPO may be '*'
  weir user priority NAME N         the highest run priority NAME may ask for
                                    with git push -o priority=N (0-9; default 0)
  weir user list                    users, key fingerprints, token counts, grants,
                                    max priority
  weir user remove NAME             delete a user

Users are stored in <data>/users.json (mode 0600); a running server picks up
changes at once. They matter only on non-loopback listeners: on loopback
everyone may read and write (branch rules, 'weir rule', apply everywhere).

flags:
`

func runUser(args []string) error {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	key := fs.String("key", "", "user add: file with the user's OpenSSH public key(s)")
	label := fs.String("name", "", "user token: what the token is for (shown by 'weir user tokens')")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), userUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("missing subcommand")
	}
	users := access.OpenUsers(filepath.Join(*data, "users.json"))
	want := func(n int, form string) error {
		if len(pos) != n+1 {
			return fmt.Errorf("usage: weir user %s", form)
		}
		return nil
	}
	switch pos[0] {
	case "add":
		if err := want(1, "add NAME --key FILE"); err != nil {
			return err
		}
		var keys []string
		if *key != "" {
			var b []byte
			if *key == "-" {
				b, err = io.ReadAll(os.Stdin)
			} else {
				b, err = os.ReadFile(*key)
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
				return fmt.Errorf("%s holds no public key", *key)
			}
		}
		if err := users.AddUser(pos[1], keys...); err != nil {
			return err
		}
		fmt.Printf("user %s: %d key(s) added\n", pos[1], len(keys))
	case "token":
		if err := want(1, "token NAME [--name LABEL]"); err != nil {
			return err
		}
		tok, id, err := users.NewToken(pos[1], *label)
		if err != nil {
			return err
		}
		fmt.Println(tok)
		fmt.Fprintf(os.Stderr, "token %s for %s: shown once; revoke it with 'weir user revoke %s %s'\n", id, pos[1], pos[1], id)
	case "tokens":
		if err := want(1, "tokens NAME"); err != nil {
			return err
		}
		list, err := users.Tokens(pos[1])
		if err != nil {
			return err
		}
		for _, t := range list {
			fmt.Printf("%s\t%s\t%s\n", t.ID, t.Created.Format(time.RFC3339), t.Name)
		}
	case "revoke":
		if err := want(2, "revoke NAME TOKEN-ID"); err != nil {
			return err
		}
		if err := users.RevokeToken(pos[1], pos[2]); err != nil {
			return err
		}
		fmt.Printf("user %s: token %s revoked\n", pos[1], pos[2])
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
		fmt.Printf("user %s: %s on %s\n", pos[1], p, pos[2])
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
		fmt.Printf("user %s: may ask for run priority up to %d\n", pos[1], n)
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
			fmt.Printf("%s\tkeys=%s\ttokens=%d\tgrants=%s\tmax-priority=%d\n", u.Name, strings.Join(u.Keys, ","), u.Tokens, strings.Join(grants, ","), u.MaxPriority)
		}
	case "remove":
		if err := want(1, "remove NAME"); err != nil {
			return err
		}
		if err := users.RemoveUser(pos[1]); err != nil {
			return err
		}
		fmt.Printf("user %s removed\n", pos[1])
	default:
		fs.Usage()
		return fmt.Errorf("unknown subcommand %q", pos[0])
	}
	return nil
}
