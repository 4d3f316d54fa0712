// Package access decides who may do what: it is the one place that knows
// users, their SSH keys and HTTP tokens, their grants on repos, and the
// rules of branches. The Git transports (gitserver), the Iceberg REST
// catalog (catalog/rest), the pipeline hook (hooks) and the SSH commands
// consult it; none of them keeps a rule of its own.
//
// It must never touch refs, objects or the warehouse: it answers questions
// and nothing else.
//
// # Identities
//
// A transport first authenticates a client to an Identity, then asks what
// that identity may do:
//
//	identity               comes from                                may
//	"anonymous"            no credentials                            write everything, but only on a
//	                                                                 loopback listener (127.0.0.0/8, ::1)
//	"<user>"               a key or token in users.json              what the user's grants say
//	"key:SHA256:<fp>"      a key in the --authorized-keys file       write everything
//
// An authenticated identity never has fewer rights than "anonymous" on the
// same listener. Whether anonymous access is on is decided once per
// listener, from the address the listener is bound to (WithAnonymous),
// never from the client's address.
//
// # Branch rules
//
// A grant says what an identity may do with a whole repo. Branch rules
// narrow it per branch; each ref of a push is authorized on its own
// (AuthorizeRef). A branch b owns two refs, refs/heads/b (code) and
// refs/data/b (data), and a rule always covers both:
//
//	protect       force push, rewind and deletion of the pair are refused
//	require-run   the branch's data moves only through a successful
//	              pipeline run, or a pushed merge of data that already
//	              stands on another branch and passes the branch's
//	              expectations; REST writes, imports and raw data pushes
//	              are refused with a message that says to write to another
//	              branch and merge
//	writers       only these identities may move the pair (every
//	              matching rule's list must name the identity)
//
// Rules name a repo (or "*") and a branch pattern (path.Match: "main",
// "release/*", "*"). Every matching rule applies: protect and require-run
// add up, writers lists intersect. The server's --protected flag adds
// protection by ref pattern on top ("refs/heads/main" protects the pair
// main).
//
// # The file
//
// Users and rules live in one JSON file, <data>/users.json (mode 0600),
// written only by the weir admin commands (under an exclusive lock, by
// atomic rename) and re-read by the server whenever it changes:
//
//	{"users": {"alice": {
//	    "keys":   ["ssh-ed25519 AAAAC3... alice@laptop"],
//	    "tokens": [{"sha256": "<hex of SHA-256(token)>", "name": "ci", "created": "2026-11-21T19:30:00Z"}],
//	    "grants": {"demo": "write", "*": "read"},
//	    "max_priority": 2,
//	    "admin": true}},
//	 "rules": [{"repo": "demo", "branch": "main", "protect": true, "require-run": true, "writers": ["alice"]}]}
//
// admin (default false) lets the user run the admin commands over SSH
// while the server runs (IsAdmin, which also says who else may).
//
// max_priority (default 0) is the highest run priority the user may ask
// for with the push option priority=N (MaxPriority); a key of the
// --authorized-keys file may ask for any, anonymous for none.
//
// Only the SHA-256 of a token is stored; the token itself is printed once,
// when it is made. A token's id is the first 12 hex digits of that hash:
// enough to list and revoke it, useless to anyone who reads the file.
package access
