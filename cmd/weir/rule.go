package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
once; an admin runs the same commands on a running server from anywhere:
ssh -p 7422 HOST weir rule ... (no --data). weir serve --protected adds
protection by ref pattern on top.

flags:
`

// runRule is "weir rule" offline.
func runRule(args []string) error { return runOfflineAdmin(ruleAdmin, args) }

// ruleAdmin is "weir rule", offline and over SSH.
var ruleAdmin = adminCommand{name: "rule", usage: ruleUsage, define: defineRule}

func defineRule(fs *flag.FlagSet) func(context.Context, *adminEnv, []string) error {
	protect := fs.Bool("protect", false, "rule set: refuse force push, rewind and deletion")
	requireRun := fs.Bool("require-run", false, "rule set: data moves only through a run or a merge that passes the expectations")
	writers := fs.String("writers", "", "rule set: comma-separated identities that may push (empty: anyone with write access)")
	return func(_ context.Context, env *adminEnv, pos []string) error {
		return ruleCommand(env, pos, *protect, *requireRun, *writers)
	}
}

// ruleCommand runs one "weir rule" subcommand on env.Users.
func ruleCommand(env *adminEnv, pos []string, protect, requireRun bool, writers string) error {
	if len(pos) == 0 {
		env.usage()
		return errors.New("missing subcommand")
	}
	users, out := env.Users, env.Out
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
		r := access.Rule{Repo: pos[1], Branch: pos[2], Protect: protect, RequireRun: requireRun}
		for _, w := range strings.Split(writers, ",") {
			if w = strings.TrimSpace(w); w != "" {
				r.Writers = append(r.Writers, w)
			}
		}
		if err := users.SetRule(r); err != nil {
			return err
		}
		fmt.Fprintf(out, "rule %s\n", r)
	case "list":
		if err := want(0, "list"); err != nil {
			return err
		}
		rules, err := users.Rules()
		if err != nil {
			return err
		}
		for _, r := range rules {
			fmt.Fprintln(out, r)
		}
	case "remove":
		if err := want(2, "remove REPO BRANCH"); err != nil {
			return err
		}
		if err := users.RemoveRule(pos[1], pos[2]); err != nil {
			return err
		}
		fmt.Fprintf(out, "rule for %s %s removed\n", pos[1], pos[2])
	default:
		env.usage()
		return fmt.Errorf("unknown subcommand %q", pos[0])
	}
	return nil
}
