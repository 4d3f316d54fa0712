"""weir: a Python model's tables, with their types.

    import weir
    orders = weir.read("clean.orders")       # a pandas DataFrame (pandas importable)
    weir.write("clean.revenue", df)          # types kept: see docs/pipelines.md

Without pandas, read returns a Table (a list of dicts with .schema) and
write takes a list of dicts (or a Table). The standard library only: this
module runs in every runtime. The runner (weir-node) hands it, in the file
named by $WEIR_IO, where each input's CSV is with its column types, and
reads each output back with the column types this module writes beside it.
"""

import csv
import datetime as _dt
import decimal as _decimal
import json
import os
import re

__all__ = ["read", "write", "Table", "inputs", "outputs", "params", "runtime"]

_io = None
_written = set()

# Column types the runner understands (DuckDB's names).
_INTS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}
_UINTS = {"UTINYINT": 8, "USMALLINT": 16, "UINTEGER": 32, "UBIGINT": 64}
_SIMPLE = set(_INTS) | set(_UINTS) | {
    "HUGEINT", "UHUGEINT", "FLOAT", "DOUBLE", "BOOLEAN", "VARCHAR", "DATE",
    "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "UUID", "BLOB"}
_DECIMAL_RE = re.compile(r"^DECIMAL\((\d{1,2}),(\d{1,2})\)$")
_ALIASES = {"INT": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "LONG": "BIGINT",
            "TEXT": "VARCHAR", "STRING": "VARCHAR", "BOOL": "BOOLEAN",
            "REAL": "FLOAT", "FLOAT8": "DOUBLE", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
            "DATETIME": "TIMESTAMP", "NUMERIC": "DECIMAL(18,3)", "DECIMAL": "DECIMAL(18,3)"}


def _load():
    global _io
    if _io is None:
        p = os.environ.get("WEIR_IO")
        if not p:
            raise RuntimeError("weir: no $WEIR_IO: this module works inside a Weir Python model")
        with open(p, encoding="utf-8") as f:
            _io = json.load(f)
    return _io


def _name(table, kind):
    io = _load()
    tabs = io[kind]
    if table in tabs:
        return table
    hits = [t for t in tabs if t.split(".", 1)[-1] == table]
    if len(hits) == 1:
        return hits[0]
    what = "an input" if kind == "inputs" else "an output"
    declared = ", ".join(sorted(tabs)) or "none"
    raise KeyError("weir: %r is not %s of this model (declared: %s); declare it in the header "
                   "(# weir: %s = ...)" % (table, what, declared, kind))


def inputs():
    """The model's declared input tables, "ns.table"."""
    return list(_load()["inputs"])


def outputs():
    """The model's declared output tables, "ns.table"."""
    return list(_load()["outputs"])


def params():
    """The push's parameters (git push -o param.NAME=VALUE), name -> text."""
    p = "WEIR_PARAM_"
    return {k[len(p):]: v for k, v in os.environ.items() if k.startswith(p) and len(k) > len(p)}


def runtime():
    """The name of the runtime the model runs in."""
    return os.environ.get("WEIR_RUNTIME", "host")


def _pandas():
    try:
        import pandas
        return pandas
    except ImportError:
        return None


def _norm_type(t):
    u = " ".join(str(t).upper().split())
    u = u.replace(", ", ",").replace(" ,", ",").replace("( ", "(").replace(" )", ")")
    u = _ALIASES.get(u, u)
    m = re.match(r"^(?:DECIMAL|NUMERIC)\((\d+)(?:,(\d+))?\)$", u)
    if m:
        p, s = int(m.group(1)), int(m.group(2) or 0)
        if not (1 <= p <= 38 and 0 <= s <= p):
            raise ValueError("weir: %s: precision must be 1..38 and scale 0..precision" % t)
        return "DECIMAL(%d,%d)" % (p, s)
    if u not in _SIMPLE:
        raise ValueError("weir: unknown column type %r (known: %s, DECIMAL(p,s))" % (t, ", ".join(sorted(_SIMPLE))))
    return u


# ---------------------------------------------------------------- reading

class Table(list):
    """Rows of a table as dicts (column -> value), with .schema: a list of
    (column, type) pairs. What read returns when pandas is not at hand."""

    def __init__(self, rows=(), schema=()):
        super().__init__(rows)
        self.schema = list(schema)

    @property
    def columns(self):
        return [n for n, _ in self.schema]


def _date(s):
    return _dt.date.fromisoformat(s)


def _time(s):
    return _dt.time.fromisoformat(s)


def _timestamp(s):
    return _dt.datetime.fromisoformat(s)


def _timestamptz(s):
    if s.endswith(("+00", "-00")) or re.search(r"[+-]\d\d$", s):
        s += ":00"
    return _dt.datetime.fromisoformat(s)


def _bool(s):
    return s.lower() in ("true", "t", "1")


def _converter(t):
    if t in _INTS or t in _UINTS or t in ("HUGEINT", "UHUGEINT"):
        return int
    if t in ("FLOAT", "DOUBLE"):
        return float
    if t.startswith("DECIMAL"):
        return _decimal.Decimal
    return {"BOOLEAN": _bool, "DATE": _date, "TIME": _time, "TIMESTAMP": _timestamp,
            "TIMESTAMP WITH TIME ZONE": _timestamptz}.get(t, str)


def _null_mask(col):
    """A list of booleans (True: NULL) for a VARCHAR column that holds both
    NULL and '' (both are an empty field in the CSV), else None."""
    p = col.get("null_mask")
    if not p:
        return None
    with open(p, encoding="ascii") as f:
        return [line.strip() == "1" for line in f]


def read(table):
    """Reads input table ("ns.table", or "table" when that is unique) with
    its column types: a pandas DataFrame when pandas is importable, else a
    Table (rows as dicts). DATE -> datetime.date, TIMESTAMP -> datetime64
    (datetime without pandas), DECIMAL(p,s) -> decimal.Decimal with its
    scale, integers -> int64 (Int64 when the column has NULLs), BOOLEAN,
    VARCHAR, DOUBLE; other types arrive as their text."""
    t = _name(table, "inputs")
    info = _load()["inputs"][t]
    pd = _pandas()
    if pd is not None:
        return _read_pandas(pd, info)
    return _read_stdlib(info)


def _read_stdlib(info):
    cols = info["columns"]
    conv = [_converter(c["type"]) for c in cols]
    fill = []  # per column: what an empty field is
    masks = {}
    for i, c in enumerate(cols):
        if c["type"] == "VARCHAR":
            if c.get("nulls", 0) and c.get("empties", 0):
                masks[i] = _null_mask(c)
                fill.append(None)
            elif c.get("empties", 0):
                fill.append("")
            else:
                fill.append(None)
        else:
            fill.append(None)
    names = [c["name"] for c in cols]
    rows = []
    with open(info["csv"], newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r, None)
        for k, rec in enumerate(r):
            row = {}
            for i, v in enumerate(rec):
                if v == "":
                    m = masks.get(i)
                    if m is not None:
                        row[names[i]] = None if m[k] else ""
                    else:
                        row[names[i]] = fill[i]
                else:
                    row[names[i]] = conv[i](v)
            rows.append(row)
    return Table(rows, [(c["name"], c["type"]) for c in cols])


def _objects(pd, s, fn):
    """Maps fn over the distinct non-null values of string Series s (fast
    for the usual few distinct dates or amounts); NULL stays None."""
    import numpy as np
    codes, uniques = pd.factorize(s)
    vals = np.empty(len(uniques) + 1, dtype=object)
    vals[:-1] = [fn(u) for u in uniques]
    vals[-1] = None
    return pd.Series(vals[codes], index=s.index, name=s.name, dtype=object)


def _read_pandas(pd, info):
    import numpy as np
    cols = info["columns"]
    names = [c["name"] for c in cols]
    dtype = {}
    post = []
    for c in cols:
        n, t, nulls = c["name"], c["type"], c.get("nulls", 0)
        if t in _INTS:
            dtype[n] = ("Int%d" if nulls else "int%d") % _INTS[t]
        elif t in _UINTS:
            dtype[n] = ("UInt%d" if nulls else "uint%d") % _UINTS[t]
        elif t == "DOUBLE":
            dtype[n] = "float64"
        elif t == "FLOAT":
            dtype[n] = "float32"
        elif t == "BOOLEAN":
            dtype[n] = "boolean" if nulls else "bool"
        else:
            dtype[n] = object
            post.append(c)
    df = pd.read_csv(info["csv"], header=0, names=names, dtype=dtype, keep_default_na=False,
                     na_values=[""], low_memory=False, engine="c")
    for c in post:
        n, t = c["name"], c["type"]
        s = df[n]
        if t == "VARCHAR":
            if c.get("nulls", 0) and c.get("empties", 0):
                m = _null_mask(c)
                df[n] = s.fillna("").where(~np.array(m, dtype=bool), None)
            elif c.get("empties", 0):
                df[n] = s.fillna("")
        elif t == "DATE":
            df[n] = _objects(pd, s, _date)
        elif t == "TIMESTAMP":
            df[n] = pd.to_datetime(s, cache=True)
        elif t == "TIMESTAMP WITH TIME ZONE":
            df[n] = pd.to_datetime(s, utc=True, cache=True)
        elif t.startswith("DECIMAL"):
            df[n] = _objects(pd, s, _decimal.Decimal)
        elif t == "TIME":
            df[n] = _objects(pd, s, _time)
        elif t in ("HUGEINT", "UHUGEINT"):
            df[n] = _objects(pd, s, int)
    # What each column was, so that write keeps a DECIMAL's declared width
    # (pandas carries attrs through most operations, not all).
    df.attrs["weir_types"] = {c["name"]: c["type"] for c in cols}
    return df


# ---------------------------------------------------------------- writing

def _decimal_type(values, column):
    """DECIMAL(p,s) wide enough for every Decimal in values."""
    scale, whole = 0, 1
    for d in values:
        if not d.is_finite():
            raise ValueError("weir: column %r holds %s, which DECIMAL cannot" % (column, d))
        sign, digits, exp = d.as_tuple()
        s = max(0, -exp)
        w = max(len(digits) + exp, 0) if exp < 0 else len(digits) + exp
        scale, whole = max(scale, s), max(whole, w)
    if whole + scale > 38:
        raise ValueError("weir: column %r needs DECIMAL(%d,%d), wider than 38 digits; round it or "
                         "pass types={%r: 'DECIMAL(38,s)'}" % (column, whole + scale, scale, column))
    return "DECIMAL(%d,%d)" % (max(whole + scale, 1), scale)


def _wider(a, b):
    """The DECIMAL type that holds what DECIMAL types a and b hold."""
    (pa, sa), (pb, sb) = [map(int, _DECIMAL_RE.match(_norm_type(x)).groups()) for x in (a, b)]
    scale = max(sa, sb)
    return "DECIMAL(%d,%d)" % (min(38, max(pa - sa, pb - sb) + scale), scale)


def _dec_text(d):
    return format(d, "f")


def _kind(v):
    if isinstance(v, bool):
        return "BOOLEAN"
    if isinstance(v, int):
        return "BIGINT" if -(1 << 63) <= v < (1 << 63) else "HUGEINT"
    if isinstance(v, float):
        return "DOUBLE"
    if isinstance(v, _decimal.Decimal):
        return "DECIMAL"
    if isinstance(v, str):
        return "VARCHAR"
    if isinstance(v, _dt.datetime):
        return "TIMESTAMP WITH TIME ZONE" if v.tzinfo is not None else "TIMESTAMP"
    if isinstance(v, _dt.date):
        return "DATE"
    if isinstance(v, _dt.time):
        return "TIME"
    return None


def _infer(values, column):
    kinds = set()
    for v in values:
        k = _kind(v)
        if k is None:
            raise TypeError("weir: column %r holds a %s (%r), which has no table type; convert it to "
                            "str, int, float, Decimal, date, datetime or bool"
                            % (column, type(v).__name__, v))
        kinds.add(k)
        if len(kinds) > 1 and kinds - {"BIGINT", "DOUBLE"}:
            raise TypeError("weir: column %r mixes %s; make it one type or pass types={%r: ...}"
                            % (column, " and ".join(sorted(kinds)), column))
    if not kinds:
        return "VARCHAR"
    if kinds == {"BIGINT", "DOUBLE"}:
        return "DOUBLE"
    k = kinds.pop()
    if k == "DECIMAL":
        return _decimal_type(values, column)
    return k


def _text(t):
    """How a value of column type t is written in the CSV."""
    if t.startswith("DECIMAL"):
        return _dec_text
    if t == "BOOLEAN":
        return lambda v: "true" if v else "false"
    if t in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATE", "TIME"):
        return lambda v: v.isoformat(sep=" ") if isinstance(v, _dt.datetime) else v.isoformat()
    if t == "VARCHAR":
        return str
    return repr if t in ("FLOAT", "DOUBLE") else str


def write(table, data, types=None):
    """Writes output table ("ns.table", or "table" when unique) with its
    column types: data is a pandas DataFrame (or Series), a list of dicts
    or a Table. Types come from the data (Decimal -> DECIMAL(p,s) wide
    enough for every value, date -> DATE, datetime64 -> TIMESTAMP, ...) or
    from types={"column": "DECIMAL(12,2)", ...}."""
    t = _name(table, "outputs")
    out = _load()["outputs"][t]
    types = {str(k): _norm_type(v) for k, v in (types or {}).items()}
    pd = _pandas()
    if pd is not None and isinstance(data, (pd.DataFrame, pd.Series)):
        schema = _write_pandas(pd, data, types, out["csv"])
    else:
        schema = _write_rows(data, types, out["csv"])
    tmp = out["schema"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"columns": schema}, f)
    os.replace(tmp, out["schema"])
    _written.add(t)


def _check_names(names, types, _from_table=False):
    seen = set()
    for n in names:
        if not isinstance(n, str) or n == "":
            raise ValueError("weir: column name %r: name every column with a non-empty string" % (n,))
        if n.lower() in seen:
            raise ValueError("weir: column %r appears twice (names are case-insensitive)" % n)
        seen.add(n.lower())
    extra = set(types) - set(names)
    if extra and not _from_table:
        raise KeyError("weir: types= names columns the table does not have: %s" % ", ".join(sorted(extra)))


def _write_rows(rows, types, path):
    names = []
    if isinstance(rows, Table) and rows.schema:
        names = rows.columns
        # Columns the rows kept keep their type unless types= says.
        types = {**{n: t for n, t in rows.schema}, **types}
    else:
        rows = list(rows)
    if rows and not isinstance(rows[0], dict):
        raise TypeError("weir: write wants a pandas DataFrame, a list of dicts or a weir.Table, "
                        "not a list of %s" % type(rows[0]).__name__)
    if rows:
        names = [n for n in names if n in rows[0]] + [n for n in rows[0] if n not in names]
    if not names:
        raise ValueError("weir: the table has no columns: write at least one column")
    _check_names(names, types, isinstance(rows, Table))
    known = set(names)
    schema, texts = [], []
    for n in names:
        vals = []
        for i, r in enumerate(rows):
            if not isinstance(r, dict):
                raise TypeError("weir: row %d is a %s, not a dict" % (i, type(r).__name__))
            v = r.get(n)
            if v is not None:
                vals.append(v)
        ty = types.get(n) or _infer(vals, n)
        ty = _norm_type(ty)
        schema.append({"name": n, "type": ty, "null_flag": ty == "VARCHAR"})
        texts.append(_text(ty))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(names + ["_null_%d" % i for i, c in enumerate(schema) if c["null_flag"]])
        for i, r in enumerate(rows):
            extra = set(r) - known
            if extra:
                raise KeyError("weir: row %d has columns the first row has not: %s" % (i, ", ".join(sorted(map(str, extra)))))
            vals = [r.get(n) for n in names]
            rec = ["" if v is None else texts[k](v) for k, v in enumerate(vals)]
            rec += ["true" if vals[k] is None else "false" for k, c in enumerate(schema) if c["null_flag"]]
            w.writerow(rec)
    return schema


def _write_pandas(pd, df, types, path):
    import numpy as np
    from pandas.api import types as pt
    if isinstance(df, pd.Series):
        df = df.to_frame(df.name if df.name is not None else "value")
    if isinstance(df.columns, pd.MultiIndex):
        raise ValueError("weir: the DataFrame has MultiIndex columns; flatten them (e.g. df.columns = ['_'.join(c) for c in df.columns])")
    # An index that carries data (named, or several levels: what groupby
    # leaves) becomes columns; a plain row number does not.
    if isinstance(df.index, pd.MultiIndex) or df.index.name is not None:
        df = df.reset_index()
    names = list(df.columns)
    _check_names(names, types)
    schema, cols, flags = [], {}, {}
    for i, n in enumerate(names):
        s = df.iloc[:, i]
        ty = types.get(n)
        dt = s.dtype
        if isinstance(dt, pd.CategoricalDtype):
            s = s.astype(object).where(s.notna(), None)
            dt = s.dtype
        if ty is None:
            if pt.is_bool_dtype(dt):
                ty = "BOOLEAN"
            elif pt.is_integer_dtype(dt):
                bits = dt.itemsize * 8
                signed = pt.is_signed_integer_dtype(dt)
                ty = {v: k for k, v in (_INTS if signed else _UINTS).items()}[bits]
            elif pt.is_float_dtype(dt):
                ty = "FLOAT" if dt.itemsize == 4 else "DOUBLE"
            elif pt.is_datetime64_any_dtype(dt):
                ty = "TIMESTAMP WITH TIME ZONE" if getattr(dt, "tz", None) is not None else "TIMESTAMP"
            elif pt.is_timedelta64_dtype(dt):
                raise TypeError("weir: column %r is a timedelta, which has no table type here; convert it "
                                "(e.g. s.dt.total_seconds())" % n)
            else:
                vals = s.dropna()
                kind = pd.api.types.infer_dtype(vals, skipna=True)
                if kind in ("string", "empty"):
                    ty = "VARCHAR"
                else:
                    ty = _infer(pd.unique(vals.to_numpy(dtype=object)), n)
                    was = (df.attrs.get("weir_types") or {}).get(n, "")
                    if ty.startswith("DECIMAL") and was.startswith("DECIMAL"):
                        ty = _wider(ty, was)
        ty = _norm_type(ty)
        null = s.isna()
        col = s
        if ty.startswith("DECIMAL"):
            col = _objects_text(pd, s, _dec_text)
        elif ty == "BOOLEAN":
            col = s.map({True: "true", False: "false"}, na_action="ignore") if s.dtype == object else \
                s.astype("boolean").map({True: "true", False: "false"}, na_action="ignore")
        elif ty in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"):
            if pt.is_datetime64_any_dtype(s.dtype):
                if getattr(s.dtype, "tz", None) is not None:
                    s = s.dt.tz_convert("UTC").dt.tz_localize(None)
                col = s.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
                if ty == "TIMESTAMP WITH TIME ZONE":
                    col = col + "+00"
            else:
                col = _objects_text(pd, s, lambda v: v.isoformat(sep=" "))
        elif ty in ("DATE", "TIME"):
            if pt.is_datetime64_any_dtype(s.dtype):
                col = s.dt.strftime("%Y-%m-%d" if ty == "DATE" else "%H:%M:%S.%f")
            else:
                col = _objects_text(pd, s, lambda v: v.isoformat())
        elif ty == "VARCHAR" and s.dtype == object:
            bad = s[null.to_numpy() == False].map(type).unique()  # noqa: E712
            odd = [b.__name__ for b in bad if b is not str]
            if odd and n not in types:
                raise TypeError("weir: column %r holds %s besides str; convert it (s.astype(str)) or pass types=" % (n, ", ".join(odd)))
        cols["c%d" % i] = col
        flag = ty == "VARCHAR" and bool(null.any())
        if flag:
            flags["f%d" % i] = np.where(null.to_numpy(), "true", "false")
        schema.append({"name": n, "type": ty, "null_flag": flag})
    frame = pd.DataFrame(cols)
    for k, v in flags.items():
        frame[k] = v
    frame.to_csv(path, index=False, header=True, na_rep="", lineterminator="\n",
                 date_format="%Y-%m-%d %H:%M:%S.%f")
    return schema


def _objects_text(pd, s, fn):
    import numpy as np
    codes, uniques = pd.factorize(s)
    vals = np.empty(len(uniques) + 1, dtype=object)
    vals[:-1] = [fn(u) for u in uniques]
    vals[-1] = None
    return pd.Series(vals[codes], index=s.index, dtype=object)
