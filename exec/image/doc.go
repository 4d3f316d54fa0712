// Package image builds, stores and lists runtime images: the read-only root
// filesystems (images) that exec runs nodes in, each with its own Python
// and packages. It lives under exec because a runtime is what exec
// registers and mounts (exec.Config.Runtimes); it is its own package
// because building one (mmdebstrap, pip, network) has nothing to do with
// running sandboxes, and because weir serve only needs the store's list.
//
// A runtime is built from Debian packages with mmdebstrap (the essential
// variant plus python3 and the packages asked for) and, optionally, wheels
// from a local folder or a package index, installed by pip in a build-only
// step (pip itself is removed again). Building is the one step in Weir that
// reaches a package source; nodes never do. The build runs as root on the
// host: mmdebstrap's root mode runs the packages' maintainer scripts in a
// chroot, as any Debian install does.
//
// Runtimes are stored by a content hash of what went in (Inputs.Hash: the
// build format, suite, sorted Debian packages, pip requirements, the
// sha256 of each wheel file, the index URL), so building the same inputs
// again is a no-op. The mirror is not part of the hash: any mirror of a
// suite serves the same packages. With SOURCE_DATE_EPOCH fixed and every
// later mtime clamped to it, two builds of the same inputs from the same
// archive state give the same files, bytes, modes and times (measured:
// the pandas runtime's 11,472 entries, 9,424 files, all the same in two
// builds but the owner of apt's two partial/ dirs, _apt or root as apt
// could reach the build folder). A
// newer archive state gives newer packages: pin the mirror to a
// snapshot.debian.org URL for the same runtime later.
//
// Layout of the store (<data dir>/runtimes):
//
//	names.json               {"pandas": "<hash>", ...}: name -> runtime
//	<hash>/rootfs/           the image; /etc/weir/runtime.json inside
//	<hash>/manifest.json     Manifest: inputs, build time, size, python,
//	                         distributions
//	.build-*/                a build in progress (renamed to <hash> when
//	                         complete; left over by a crash, removed by
//	                         the next build)
//	.lock                    flock held by a build or a removal
//
// A runtime appears in names.json only after its folder is complete, so a
// crash at any point leaves nothing half registered. The package must
// never run a node, and never start a sandbox.
package image
