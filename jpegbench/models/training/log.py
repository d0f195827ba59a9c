"""The training log: the running sums of a log window, its rows, ``log.csv`` and ``curves.png``.

A row is written every ``log_every`` and ``val_every`` steps and at the
config's last step, never where ``until_step`` or an interruption stops a run;
``loss``, ``l1`` and ``qf_loss`` are means over the steps since the previous
row. ``last.pt`` keeps the sums of the open window, so a resumed run logs
exactly what an uninterrupted one logs (``seconds`` aside).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jpegbench._fs import atomic_write_bytes
from jpegbench.models.training.config import TrainConfig, is_int

__all__ = ["LOG_COLUMNS", "read_log", "write_log", "plot", "log_window", "account"]

LOG_COLUMNS: tuple[str, ...] = ("step", "loss", "l1", "qf_loss", "lr", "val_psnr", "seconds")


def read_log(path: Path, upto_step: int) -> list[dict[str, str]]:
    """The rows of ``log.csv`` up to ``upto_step`` (a resumed run drops rows past its state)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) <= upto_step]


def write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``log.csv`` atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in LOG_COLUMNS})
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def plot(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    """Write ``curves.png``: training loss and validation PSNR against step."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in ("", None)]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for key in ("loss", "l1"):
        x, y = series(key)
        ax1.plot(x, y, label=key)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.set_yscale("log")
    ax1.legend()
    x, y = series("val_psnr")
    ax2.plot(x, y, marker="o")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation PSNR (dB)")
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def log_window(saved: Any) -> dict[str, Any]:
    """The running sums of the current log window: empty, or as saved in ``last.pt``.

    A state written before the window was saved in it has none (nor has a
    damaged one): the run then resumes with an empty window, as such runs
    always did (the next log row averages only the steps after the resume).
    """
    empty = {"loss": 0.0, "l1": 0.0, "qf_loss": 0.0, "n": 0}
    if not isinstance(saved, Mapping) or set(saved) != set(empty):
        return empty
    sums_ok = all(isinstance(saved[k], float) for k in ("loss", "l1", "qf_loss"))
    if not (sums_ok and is_int(saved["n"]) and saved["n"] >= 0):
        return empty
    return {"loss": saved["loss"], "l1": saved["l1"], "qf_loss": saved["qf_loss"], "n": int(saved["n"])}


def account(
    acc: dict[str, Any], cfg: TrainConfig, step: int, loss: float, l1: float, qf_loss: float, optimizer: Any,
    seconds: float,
) -> dict[str, Any] | None:
    """Add step ``step`` to the log window ``acc`` (in place); at a log row return the row and empty the window.

    Rows fall on multiples of ``log_every`` and ``val_every`` and on the
    config's last step, never where ``until_step`` or an interruption stops
    the run, so a run stopped and resumed logs exactly what an uninterrupted
    one logs.
    """
    acc["loss"] += loss
    acc["l1"] += l1
    acc["qf_loss"] += qf_loss
    acc["n"] += 1
    if not (step % cfg.log_every == 0 or step % cfg.val_every == 0 or step == cfg.steps):
        return None
    n = acc["n"]
    row = {
        "step": step,
        "loss": f"{acc['loss'] / n:.6f}",
        "l1": f"{acc['l1'] / n:.6f}",
        "qf_loss": f"{acc['qf_loss'] / n:.6f}",
        "lr": f"{optimizer.param_groups[0]['lr']:.3g}",
        "val_psnr": "",
        "seconds": f"{seconds:.1f}",
    }
    acc.update(loss=0.0, l1=0.0, qf_loss=0.0, n=0)
    return row
