"""Runs one Python model for weir-node: python3 _launch.py MODEL.

The model file runs as __main__, as "python3 MODEL" would run it. Then,
if it defined a function named model and wrote none of its outputs, that
function is called with its input tables (parameters named by table, with
or without the namespace) and what it returns is written: a table for a
model with one output, a dict table -> table for several. An error is
reported on the last line of stderr as "<file>:<line>: <error>", the line
being the last one of the traceback in the model's own files; a missing
module as "<file>: No module named 'x'; runtime R has: ...".

With WEIR_GATE=1 in its environment the runner starts this launcher
before it has written the model's inputs: the launcher imports what
nearly every model's start-up costs (pandas when the runtime has it, the
weir module when the model's source names it) meanwhile, then waits for the line "go" on stdin, which the
runner writes once every input and $WEIR_IO are complete. Anything else
(the runner failed and closed the pipe) ends the launcher before the
model runs. Stdin is /dev/null for the model, as without the gate.
"""

# Only what every run needs is imported here: a Python start-up is paid
# on every push (CPU per push), and inspect alone costs as much as the
# interpreter's own start. inspect, json and traceback are imported where
# a model's function form, its outputs check or an error needs them.
import builtins
import os
import sys
import types

_SKIP = {"pip", "setuptools", "wheel", "pkg-resources", "pkg_resources", "distribute"}


def _display(path):
    """The repository path of a file the model runs."""
    model = os.environ.get("WEIR_MODEL_SOURCE", "")
    lib = os.environ.get("WEIR_LIB", "")
    if model and os.path.abspath(path) == os.path.abspath(model):
        return os.environ.get("WEIR_MODEL_FILE") or os.path.basename(path)
    if lib and os.path.abspath(path).startswith(os.path.abspath(lib) + os.sep):
        return os.path.relpath(path, lib)
    return None


def _packages():
    """What the runtime has: /etc/weir/runtime.json, else the installed
    distributions (importlib.metadata), trimmed."""
    import json

    try:
        with open("/etc/weir/runtime.json", encoding="utf-8") as f:
            pk = json.load(f).get("packages") or {}
        items = [(str(k), str(v)) for k, v in pk.items()]
    except (OSError, ValueError, AttributeError):
        items = []
        try:
            from importlib import metadata
            seen = set()
            for d in metadata.distributions():
                n = d.metadata.get("Name") or ""
                if n and n.lower() not in seen:
                    seen.add(n.lower())
                    items.append((n, d.version or "?"))
        except Exception:
            pass
        items.sort(key=lambda kv: kv[0].lower())
    items = [kv for kv in items if kv[0].lower() not in _SKIP]
    shown = ", ".join("%s %s" % kv for kv in items[:20])
    if len(items) > 20:
        shown += ", and %d more" % (len(items) - 20)
    return shown


def _where(tb, fallback):
    """The last frame of tb in one of the model's own files: (file, line)."""
    import traceback

    at = None
    for fr in traceback.extract_tb(tb):
        d = _display(fr.filename)
        if d:
            at = (d, fr.lineno)
    return at or (fallback, None)


def _report(e, model_disp):
    import traceback

    tb = e.__traceback__
    # Leave this launcher's own frames out of what the user reads.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb, file=sys.stderr)
    f, line = _where(tb, model_disp)
    line = getattr(e, "weir_line", None) or line
    if isinstance(e, ModuleNotFoundError) and e.name:
        rt = os.environ.get("WEIR_RUNTIME", "host")
        has = _packages()
        what = ("runtime %s has: %s" % (rt, has)) if has else ("runtime %s has only the standard library" % rt)
        msg = "%s: No module named %r; %s" % (f, e.name, what)
    else:
        text = (e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str)
                else str(e)).strip().splitlines()
        msg = "%s: %s" % (type(e).__name__, text[0] if text else "")
        msg = ("%s:%d: %s" % (f, line, msg)) if line else ("%s: %s" % (f, msg))
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _bind(fn, weir):
    """The arguments of model(): each parameter names an input table."""
    import inspect

    ins = weir.inputs()
    short = {}
    for t in ins:
        short.setdefault(t.split(".", 1)[1], []).append(t)
    args = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError("model() takes *args or **kwargs; name one parameter per input table (%s)"
                            % ", ".join(ins))
        full = [t for t in ins if t.replace(".", "_") == p.name]
        if len(short.get(p.name, [])) == 1:
            t = short[p.name][0]
        elif len(full) == 1:
            t = full[0]
        elif p.default is not p.empty:
            continue
        elif p.name == "params":
            args[p.name] = weir.params()
            continue
        else:
            raise TypeError("model() parameter %r names no input table (inputs: %s; name a parameter "
                            "after the table, e.g. %s, or ns_table when two namespaces share a name)"
                            % (p.name, ", ".join(ins) or "none", ins[0].split(".", 1)[1] if ins else "orders"))
        args[p.name] = weir.read(t)
    return args


def _call(fn, weir):
    try:
        args = _bind(fn, weir)
    except TypeError as e:
        e.weir_line = fn.__code__.co_firstlineno  # the def line, where the fix goes
        raise
    got = fn(**args)
    outs = weir.outputs()
    if isinstance(got, dict) and not (len(outs) == 1 and not all(isinstance(k, str) for k in got)):
        for k, v in got.items():
            weir.write(k, v)
        missing = [t for t in outs if t not in weir._written]
        if missing:
            raise ValueError("model() returned no table for %s (it returned %s)"
                             % (", ".join(missing), ", ".join(map(str, got)) or "an empty dict"))
        return
    if got is None:
        raise ValueError("model() returned None: return the output table (a DataFrame or a list of dicts)"
                         + ("" if len(outs) == 1 else ", or a dict table -> table for the outputs " + ", ".join(outs)))
    if len(outs) != 1:
        raise ValueError("model() returned one table but the model declares %d outputs (%s): return a dict "
                         "table -> table" % (len(outs), ", ".join(outs)))
    weir.write(outs[0], got)


def _wrote_any():
    io = os.environ.get("WEIR_IO")
    if not io:
        return False
    import json

    with open(io, encoding="utf-8") as f:
        outs = json.load(f)["outputs"]
    return any(os.path.exists(o[k]) for o in outs.values() for k in ("csv", "parquet", "schema"))


def _warm(path):
    """Imports pandas (if the runtime has it) and, if the model's source
    names it, the weir module, so that the model's own imports find them
    loaded. Any failure is left for the model's import to raise and
    report. A model that never mentions weir (a plain script) does not
    pay for importing it: the function form names it (def model), and so
    does a model that imports it. The source is read again to run it,
    after the gate: this look is only a guess of what to warm."""
    try:
        with open(path, "rb") as f:
            src = f.read()
    except OSError:
        src = b""
    try:
        import pandas  # noqa: F401
    except Exception:  # noqa: B902 (the model's own import reports it)
        pass
    if b"import weir" in src or b"from weir" in src or b"def model" in src:
        try:
            import weir  # noqa: F401
        except Exception:  # noqa: B902
            pass


def _wait_gate():
    """Waits for the runner's "go"; False if it never comes. Reads fd 0
    itself, a byte at a time, so that sys.stdin buffers nothing of it."""
    line = b""
    while len(line) < 16 and not line.endswith(b"\n"):
        b = os.read(0, 1)
        if not b:
            break
        line += b
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return line.strip() == b"go"


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: _launch.py MODEL\n")
        return 2
    path = sys.argv[1]
    if os.environ.pop("WEIR_GATE", "") == "1":
        _warm(path)
        if not _wait_gate():
            return 3
    disp = os.environ.get("WEIR_MODEL_FILE") or os.path.basename(path)
    with open(path, "rb") as f:
        src = f.read()
    mod = types.ModuleType("__main__")
    mod.__dict__.update({"__file__": path, "__builtins__": builtins, "__cached__": None})
    sys.modules["__main__"] = mod
    sys.argv = [path]
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    try:
        code = compile(src, path, "exec")
        exec(code, mod.__dict__)
        fn = mod.__dict__.get("model")
        if callable(fn) and not _wrote_any():
            import weir
            _call(fn, weir)
    except SystemExit:
        raise
    except SyntaxError as e:
        import traceback

        traceback.print_exception(type(e), e, None, file=sys.stderr)
        sys.stderr.write("%s:%s: SyntaxError: %s\n" % (disp, e.lineno, e.msg))
        return 1
    except BaseException as e:  # noqa: B902 (reported, then exit 1)
        _report(e, disp)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
