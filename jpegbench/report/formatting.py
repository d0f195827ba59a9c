"""Tables as text: the paper's ``PSNR|SSIM|PSNR-B`` cells, Markdown, LaTeX, and the CSV/MD/TeX files of a report.

:func:`compact_table` formats a table of :mod:`jpegbench.report.tables`
the way the paper prints its cells; :func:`to_markdown` and :func:`to_latex`
render it; :func:`write_tables` writes each table as CSV (numbers), Markdown
and LaTeX.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from jpegbench._fs import ensure_dir, write_atomic
from jpegbench.errors import InputError

__all__ = ["compact_table", "to_latex", "to_markdown", "write_tables"]

_DECIMALS = {"PSNR": 2, "SSIM": 3, "PSNR-B": 2}


def _fmt(v: object, label: str, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        spec = f"{'+' if signed else ''}.{_DECIMALS.get(label, 2)}f"
        return format(float(v), spec).replace("-", "−") if signed else format(float(v), spec)
    return str(v)


def compact_table(table: pd.DataFrame) -> pd.DataFrame:
    """Strings as the paper prints them: one ``PSNR|SSIM|PSNR-B`` cell per method and value.

    Columns ``(method, metric, value)`` (from :func:`table3`,
    :func:`single_jpeg_table`) become ``"<method> <value>"`` (``"fbcnn"``,
    ``"fbcnn paper"``, ``"fbcnn Δ"``); other tables are formatted cell by
    cell: QFs with one decimal, the columns listed in ``table.attrs["percent"]``
    as percentages, other floats with three.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if table.columns.nlevels == 3 and "metric" in (table.columns.names or []):
        out: dict[str, list[str]] = {}
        for method, metric, value in table.columns:
            if method == "n":
                out["n"] = [str(int(v)) for v in table[(method, metric, value)]]
                continue
            name = method if value == "ours" else f"{method} {'Δ' if value == 'delta' else value}"
            cells = [_fmt(v, metric, signed=value == "delta") for v in table[(method, metric, value)]]
            if name in out:
                out[name] = [f"{a}|{b}" for a, b in zip(out[name], cells)]
            else:
                out[name] = cells
        return pd.DataFrame(out, index=table.index)
    out2 = {}
    percent = set(table.attrs.get("percent", ()))
    for c in table.columns:
        col = table[c]
        label = str(c)
        if c in percent:
            out2[label] = ["–" if pd.isna(v) else f"{100 * float(v):.0f}%" for v in col]
        elif col.dtype == object or isinstance(col.dtype, pd.StringDtype):
            out2[label] = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for v in col]
        elif pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            out2[label] = [str(v) for v in col]
        else:
            dec = 1 if ("predicted" in label or "QF" in label or label in ("estimate", "tables", "dominant_qf")) else 3
            out2[label] = ["–" if pd.isna(v) else f"{float(v):.{dec}f}" for v in col]
    return pd.DataFrame(out2, index=table.index)


def _index_frame(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    shown = compact_table(table)
    names = [str(n) if n is not None else "" for n in shown.index.names]
    idx = [list(map(str, k)) if isinstance(k, tuple) else [str(k)] for k in shown.index]
    header = names + [str(c) for c in shown.columns]
    rows = [i + list(map(str, r)) for i, r in zip(idx, shown.itertuples(index=False))]
    return header, rows


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of :func:`compact_table` (pipes in cells escaped)."""
    header, rows = _index_frame(table)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---" if i < table.index.nlevels else "---:" for i in range(len(header))]
    return "\n".join([line(header), "| " + " | ".join(align) + " |", *map(line, rows)]) + "\n"


_TEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
               "Δ": r"$\Delta$", "−": "$-$", "–": "--", "|": r"\,|\,", "<": "$<$", ">": "$>$"}  # fmt: skip


def _tex(s: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in s)


def to_latex(table: pd.DataFrame, *, caption: str | None = None) -> str:
    """A ``booktabs`` LaTeX ``tabular`` of :func:`compact_table` (no jinja2 needed)."""
    header, rows = _index_frame(table)
    nidx = table.index.nlevels
    spec = "l" * nidx + "r" * (len(header) - nidx)
    lines = [r"\begin{table}[t]", r"\centering"] if caption else []
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines += [rf"\caption{{{_tex(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _flat_csv(table: pd.DataFrame) -> str:
    t = table.copy()
    if t.columns.nlevels > 1:
        t.columns = [".".join(str(p) for p in c if str(p)) for c in t.columns]
    return t.to_csv(lineterminator="\n")


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Write each table as ``<name>.csv`` (numbers), ``<name>.md`` and ``<name>.tex`` (formatted).

    Parameters
    ----------
    tables : mapping of str to DataFrame
        File stem -> table; empty tables are skipped.
    out_dir : path
        Created if needed. Files are written atomically.

    Returns
    -------
    dict of str to list of Path
        The files written per table.
    """
    if not isinstance(tables, Mapping):
        raise InputError(f"tables must be a mapping of name to DataFrame, got {type(tables).__name__}")
    out = Path(out_dir)
    ensure_dir(out)
    written: dict[str, list[Path]] = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise InputError(f"table names must be plain file stems, got {name!r}")
        if not isinstance(table, pd.DataFrame):
            raise InputError(f"tables[{name!r}] must be a DataFrame, got {type(table).__name__}")
        if table.empty:
            continue
        files = []
        for suffix, text in ((".csv", _flat_csv(table)), (".md", to_markdown(table)), (".tex", to_latex(table))):
            path = out / f"{name}{suffix}"
            write_atomic(path, text.encode("utf-8"))
            files.append(path)
        written[name] = files
    return written
