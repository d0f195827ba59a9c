"""Real-world JPEGs (no ground truth): each restored blind, with its estimated dominant QF and with a manual QF.

The paper's real-world section, and its users' complaint (FBCNN issues #3,
#8: weak results on real images without a manual QF), as one experiment:
every image goes through the three ways of choosing FBCNN's QF,

==========  ================================================================
path        QF that conditions the decoder
==========  ================================================================
blind       the network's own prediction (``fbcnn``)
dominant    the dominant QF the estimator reads off the image (``fbcnn-d``;
            its blind prediction when the estimator finds none)
manual      a low QF set by hand (the paper's interactive control)
==========  ================================================================

and a crop of the JPEG and of each output is kept with the QFs used in a
sidecar (:func:`jpegbench.evaluate.sidecars.read_realworld`) that the report
renders. There is no clean image, so there is no PSNR: the crops are for the
eye, the QFs for the record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from jpegbench._progress import progress_bar
from jpegbench.codec import list_images, qf_from_qtables, read_header, read_image
from jpegbench.errors import ImageReadError, ImageTooLargeError, InputError, ShapeError
from jpegbench.evaluate.provenance import weights_info
from jpegbench.evaluate.sidecars import crop_box, write_realworld

__all__ = ["realworld"]

_CROP = 160


def _tables_qf(path: Path) -> tuple[int | None, str]:
    """The IJG QF of a JPEG file's last tables and how exact it is (``None, ""`` for other files)."""
    try:
        hdr = read_header(path.read_bytes())
    except (ImageReadError, OSError):
        return None, ""
    tables = hdr.component_qtables()  # as inspect and estimate read them: a shared table counts once
    if not tables:
        return None, ""
    found = qf_from_qtables(tables[:2])
    return int(found.qf), str(found.kind)


def realworld(
    inputs: list[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    manual_qf: int = 10,
    weights_dir: str | os.PathLike[str] | None = None,
    device: str | None = None,
    estimator: str = "robust",
    color_policy: str = "auto",
    crop: int = _CROP,
    progress: bool = True,
) -> Path:
    """Restore real-world JPEGs three ways and write the crops and QFs to ``out`` (a ``.npz`` sidecar).

    Parameters
    ----------
    inputs : path or list of paths
        Image files or folders (e.g. ``../shared/data/Real``).
    out : path
        The sidecar file to write (atomically), ``*.npz``.
    manual_qf : int, default 10
        The manual QF (1..100) of the third path: low, to show how much a
        user can still gain over the blind prediction on a heavily
        compressed-looking image.
    weights_dir, device, estimator, color_policy
        As in :func:`jpegbench.evaluate.evaluate` (FBCNN's weights: colour
        images get the colour model when there is one).
    crop : int, default 160
        Side of the centred crop kept per image (grid-aligned; smaller
        images are kept whole in that axis).
    progress : bool, default True

    Returns
    -------
    Path
        ``out``. Images that cannot be read are listed in the sidecar's
        ``skipped``, not restored.

    Raises
    ------
    InputError
        Bad ``manual_qf``, ``crop`` or ``out``; no images.
    WeightsError
        No FBCNN weights found.
    """
    from jpegbench.models.methods import get_method

    if isinstance(manual_qf, bool) or not isinstance(manual_qf, (int, np.integer)) or not 1 <= manual_qf <= 100:
        raise InputError(f"manual_qf must be an integer in 1..100, got {manual_qf!r}")
    if isinstance(crop, bool) or not isinstance(crop, int) or crop < 8:
        raise InputError(f"crop must be an integer >= 8, got {crop!r}")
    out = Path(out)
    if out.suffix.lower() != ".npz":
        raise InputError(f"out must be a .npz file, got {out}")
    files = list_images(inputs)
    blind = get_method("fbcnn", weights_dir=weights_dir, device=device, color_policy=color_policy)
    dominant = get_method("fbcnn-d", weights_dir=weights_dir, device=device, estimator=estimator,
                          color_policy=color_policy)
    images: list[dict[str, Any]] = []
    crops: list[dict[str, np.ndarray]] = []
    skipped: list[list[str]] = []
    weights: dict[str, dict[str, Any]] = {}
    for f in progress_bar(files, progress=progress, desc="real-world", unit="img", leave=False):
        try:
            x = read_image(f, min_size=8, high_bit_depth="refuse")
        except (ImageReadError, ImageTooLargeError, ShapeError) as exc:
            skipped.append([str(f), str(exc).removeprefix(f"{f}: ")])
            continue
        runs = {"blind": blind(x), "dominant": dominant(x), "manual": blind(x, qf=manual_qf)}
        y0, x0, ch, cw = box = crop_box(x.shape, crop)
        crops.append({"jpeg": x[y0:y0 + ch, x0:x0 + cw]})
        for path, r in runs.items():
            crops[-1][path] = r.image[y0:y0 + ch, x0:x0 + cw]
            weights.setdefault(Path(str(r.weights)).name, weights_info(r.weights))
        qf_tables, kind = _tables_qf(f)
        images.append({
            "name": f.name, "width": int(x.shape[1]), "height": int(x.shape[0]),
            "color": "gray" if x.ndim == 2 else "rgb", "color_path": runs["blind"].color_path, "box": box,
            "qf_tables": qf_tables, "qf_tables_kind": kind,
            "qf_predicted": float(runs["blind"].qf_predicted),
            "paths": {p: {"qf_used": float(r.qf_used), "qf_source": str(r.qf_source),
                          "weights": Path(str(r.weights)).name} for p, r in runs.items()},
        })  # fmt: skip
    if not images:
        raise InputError(f"no readable image among {len(files)} input(s): " + "; ".join(": ".join(s) for s in skipped))
    meta = {"manual_qf": int(manual_qf), "estimator": estimator, "color_policy": color_policy, "crop": crop,
            "images": images, "skipped": skipped, "weights": weights}  # fmt: skip
    return write_realworld(out, meta, crops)
