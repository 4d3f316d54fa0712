package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/weir-dev/weir/access"
)

const ruleUsage = `usage: weir rule <subcommand> [--data DIR] ...

  weir rule set REPO BRANCH [--protect] [--require-run] [--writers a,b]
                          add the rule for BRANCH (a name or a pattern such as
                          'release/*') of REPO ('*' = every repo), replacing
                          the rule with the same REPO and BRANCH
  weir rule list          every rule
  weir rule remove REPO BRANCH

A rule covers a branch's code ref and its data ref together:
  --protect      force push, rewind and deletion are refused
  --require-run  the data moves only through a successful pipeline run, or a
                 pushed merge of data that stands on another branch and passes
                 the branch's expectations; REST writes and raw data pushes
                 are refused
  --writers      only these users (or "anonymous", or key:SHA256:...) may push

Rules are stored in <data>/users.json; a running server applies changes at
once. weir serve --protected adds protection by ref pattern on top.

flags:
`

func runRule(args []string) error {
	fs := flag.NewFlagSet("rule", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	protect := fs.Bool("protect", false, "rule set: refuse force push, rewind and deletion")
	requireRun := fs.Bool("require-run", false, "rule set: data moves only through a run or a merge that passes the expectations")
	writers := fs.String("writers", "", "rule set: comma-separated identities that may push (empty: anyone with write access)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), ruleUsage)
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
			return fmt.Errorf("usage: weir rule %s", form)
		}
		return nil
	}
	switch pos[0] {
	case "set":
		if err := want(2, "set REPO BRANCH [--protect] [--require-run] [--writers a,b]"); err != nil {
			return err
		}
		r := access.Rule{Repo: pos[1], Branch: pos[2], Protect: *protect, RequireRun: *requireRun}
		for _, w := range strings.Split(*writers, ",") {
			if w = strings.TrimSpace(w); w != "" {
				r.Writers = append(r.Writers, w)
			}
		}
		if err := users.SetRule(r); err != nil {
			return err
		}
		fmt.Printf("rule %s\n", r)
	case "list":
		if err := want(0, "list"); err != nil {
			return err
		}
		rules, err := users.Rules()
		if err != nil {
			return err
		}
		for _, r := range rules {
			fmt.Println(r)
		}
	case "remove":
		if err := want(2, "remove REPO BRANCH"); err != nil {
			return err
		}
		if err := users.RemoveRule(pos[1], pos[2]); err != nil {
			return err
		}
		fmt.Printf("rule for %s %s removed\n", pos[1], pos[2])
	default:
		fs.Usage()
		return fmt.Errorf("unknown subcommand %q", pos[0])
	}
	return nil
}
