"""Restore image files to a folder, with a per-image QF record (the ``restore`` command)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from jpegbench._fs import atomic_write_bytes
from jpegbench._progress import progress_bar
from jpegbench.codec import list_images, png_bytes, read_image
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, ShapeError
from jpegbench.models.methods import Method, get_method

__all__ = ["AUTO_TILE_PIXELS", "RestoreRun", "restore_files"]

#: Above this many pixels, restoration is tiled (512-pixel tiles) unless a tile is given.
AUTO_TILE_PIXELS = 2048 * 2048


@dataclass
class RestoreRun:
    """What :func:`restore_files` did: one row per restored image, and what it skipped."""

    table: pd.DataFrame
    skipped: list[tuple[str, str]]


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create output directory ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"{out_dir}: output directory is not writable")


def restore_files(
    inputs: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    method: str = "fbcnn",
    qf: float | None = None,
    weights: str | os.PathLike[str] | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    tile: int | None = None,
    device: str | None = None,
    estimator: str = "robust",
    color_policy: str = "auto",
    max_pixels: int | None = None,
    progress: bool = True,
) -> RestoreRun:
    """Restore every image of ``inputs`` (files or folders) into ``out_dir`` as PNG.

    Writes ``out_dir/<stem>.png`` for each image (atomically) and
    ``out_dir/restore.csv`` with ``input, output, method, qf_predicted,
    qf_used, weights, seconds, width, height, qf_source, color_path``
    (``qf_source``: where ``qf_used`` came from,
    :data:`jpegbench.models.methods.QF_SOURCES`; ``color_path``: ``gray``,
    ``color`` (a colour model) or ``luma`` (a gray model on the Y channel of
    an RGB image), empty for ``jpeg``). ``color_policy`` chooses between the
    last two for RGB images (see :func:`jpegbench.models.get_method`).
    Unreadable inputs are skipped and listed in :attr:`RestoreRun.skipped`;
    images above :data:`AUTO_TILE_PIXELS` are tiled automatically.

    The table-guided methods (qcn, qgcn, ijcn and their ``-d`` twins) read
    each file itself; an input such a method cannot take at all (a PNG for
    one that reads the file's tables, a gray or non-4:2:0 JPEG for IJCN)
    and missing or wrong weights stop the run before anything is written.
    """
    out = Path(out_dir)
    files = list_images(inputs)
    runner = get_method(method, weights=weights, weights_dir=weights_dir, device=device, tile=tile,
                        estimator=estimator, color_policy=color_policy)
    tiled = None
    if tile is None:
        tiled = get_method(method, weights=weights, weights_dir=weights_dir, device=device, tile=512,
                           estimator=estimator, color_policy=color_policy)
    reads_file = getattr(runner, "reads_file", False)  # any callable pixels -> Restoration may stand in
    # The policy as get_method resolved it (its older name "error" is "color" too).
    if isinstance(runner, Method) and method != "jpeg" and runner._color_policy == "color":
        runner.model(3)  # the colour model was asked for: none is an error before any work
    # Header checks (and loading the weights) before any work: a method/input mismatch is not a bad image.
    sizes = {f: runner.check(f, qf=qf) for f in files} if reads_file else {}
    _check_out_dir(out)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise InputError("two inputs share a file name stem; restore them into separate folders")
    clobbered = [f for f in files if (out / f"{f.stem}.png").resolve() == f.resolve()]
    if clobbered:
        raise InputError(f"{clobbered[0]}: the output would overwrite this input; choose another --out folder")
    rows, skipped = [], []
    for f in progress_bar(files, progress=progress, desc=f"restore {method}", unit="img", leave=False):
        try:
            if reads_file:
                size = sizes[f]
                use = tiled if tiled is not None and size is not None and size[0] * size[1] > AUTO_TILE_PIXELS \
                    else runner
                r = use(f, qf=qf, max_pixels=max_pixels)
                height, width = r.image.shape[:2]
            else:
                x = read_image(f, max_pixels=max_pixels, min_size=8, high_bit_depth="refuse")
                height, width = x.shape[:2]
                use = tiled if tiled is not None and height * width > AUTO_TILE_PIXELS else runner
                r = use(x, qf=qf)
            dest = out / f"{f.stem}.png"
            atomic_write_bytes(dest, png_bytes(r.image))
        except (ImageReadError, ImageTooLargeError, ShapeError) as exc:
            # A bad image is skipped; anything else (weights, device) stops the run.
            skipped.append((str(f), str(exc).removeprefix(f"{f}: ")))
            continue
        rows.append({
            "input": str(f), "output": str(dest), "method": method, "qf_predicted": r.qf_predicted,
            "qf_used": r.qf_used, "weights": r.weights, "seconds": r.seconds,
            "width": width, "height": height, "qf_source": r.qf_source,
            "color_path": r.color_path,
        })
    table = pd.DataFrame(rows, columns=["input", "output", "method", "qf_predicted", "qf_used", "weights",
                                        "seconds", "width", "height", "qf_source", "color_path"])
    atomic_write_bytes(out / "restore.csv", table.to_csv(index=False).encode())
    return RestoreRun(table, skipped)
