package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/weir-dev/weir/gitserver"
)

func init() {
	register(command{name: "user", summary: "manage users, SSH keys, HTTP tokens and grants", run: runUser})
}

const userUsage = `usage: weir user <subcommand> [--data DIR] ...

  weir user add NAME --key FILE     add a user (or a key to a user); FILE holds
                                    OpenSSH public keys, one a line ("-" = stdin)
  weir user token NAME              make a new HTTP token for NAME and print it
                                    (only its SHA-256 is kept)
  weir user grant NAME REPO PERM    PERM is read, write or none; REPO may be '*'
  weir user list                    users, key fingerprints, token counts, grants
  weir user remove NAME             delete a user

Users are stored in <data>/users.json (mode 0600); a running server picks up
changes at once. They matter only on non-loopback listeners: on loopback
everyone may read and write.

flags:
`

func runUser(args []string) error {
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	key := fs.String("key", "", "user add: file with the user's OpenSSH public key(s)")
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
	users := gitserver.OpenUsers(filepath.Join(*data, "users.json"))
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
		if err := want(1, "token NAME"); err != nil {
			return err
		}
		tok, err := users.NewToken(pos[1])
		if err != nil {
			return err
		}
		fmt.Println(tok)
	case "grant":
		if err := want(3, "grant NAME REPO read|write|none"); err != nil {
			return err
		}
		p, err := gitserver.ParsePermission(pos[3])
		if err != nil {
			return err
		}
		if err := users.Grant(pos[1], pos[2], p); err != nil {
			return err
		}
		fmt.Printf("user %s: %s on %s\n", pos[1], p, pos[2])
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
			fmt.Printf("%s\tkeys=%s\ttokens=%d\tgrants=%s\n", u.Name, strings.Join(u.Keys, ","), u.Tokens, strings.Join(grants, ","))
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
