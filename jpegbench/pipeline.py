"""The end-to-end demo above the stages: synth -> estimate -> restore -> evaluate -> report, on public-domain photos that ship with scikit-image.

:func:`run_demo` needs no data and no download:

1. sources: four photographs from :mod:`skimage.data` (``camera``,
   ``astronaut``, ``coffee``, ``chelsea``; public domain / CC0, bundled in
   the scikit-image wheel), converted to gray (BT.601 studio-swing Y),
   reduced by an integer factor (box filter) and centre-cropped to 128 x 128:
   small, so that the demo runs in a minute or two on two CPU cores;
2. two corpora via :mod:`jpegbench.synth`: single JPEG at QF 10, 30, 50; and
   double JPEG with QF1, QF2 in {10, 30, 50}, the second grid aligned
   (shift (0, 0)) or not (shift (4, 4), the paper's Table 3 protocol);
3. evaluation of ``jpeg``, ``fbcnn``, ``fbcnn-d`` and ``fbcnn-a`` with the
   small models shipped with the package (not the authors' released ones);
4. the flexibility curve of two non-aligned QF1 < QF2 samples;
5. the report (HTML, Markdown, tables, figures).

Re-running with the same folder resumes every stage.

This module sits above every stage (layers: codec <- synth/estimate/metrics
<- models <- evaluate <- report <- pipeline/cli); nothing in the package
imports it but the CLI.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from jpegbench.errors import InputError, ResultsError

__all__ = ["DEMO_IMAGES", "DEMO_SIZE", "DEMO_FLEX_QFS", "run_demo", "demo_sources"]

#: skimage.data photographs used by the demo (public domain / CC0).
DEMO_IMAGES = ("camera", "astronaut", "coffee", "chelsea")
DEMO_SIZE = 128
DEMO_FLEX_QFS = tuple(range(5, 95, 5))
DEMO_METHODS = ("jpeg", "fbcnn", "fbcnn-d", "fbcnn-a")

# The header names the module the demo lived in when its recipes were first written: the recipe text is
# hashed into each corpus's fingerprint, so another header would make every existing demo folder (and the
# committed reports/demo) a corpus "of another recipe".
_HEADER = """# jpegbench demo recipe ({what}), written by jpegbench.report.run_demo.
# Sources: {n} photographs from skimage.data (public domain / CC0), gray, reduced, {size}x{size} centre crops.
"""
_SINGLE = """name = "demo-single"
description = "demo: single JPEG, QF in {10, 30, 50}"
seed = 0
color = "gray"

[source]
path = "sources"
glob = "*.png"

[encoder]
backend = "pillow"

[[stages]]
op = "jpeg"
qf = [10, 30, 50]
"""
_DOUBLE = """name = "demo-double"
description = "demo: JPEG(QF1) -> shift (0, 0) or (4, 4) -> JPEG(QF2), QF1, QF2 in {10, 30, 50}"
seed = 0
color = "gray"

[source]
path = "sources"
glob = "*.png"

[encoder]
backend = "pillow"

[[stages]]
op = "jpeg"
qf = [10, 30, 50]

[[stages]]
op = "shift"
shift = [[0, 0], [4, 4]]

[[stages]]
op = "jpeg"
qf = [10, 30, 50]
"""


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(f"[demo] {msg}", file=sys.stderr, flush=True)


def demo_sources(out_dir: str | os.PathLike[str], *, size: int = DEMO_SIZE) -> list[Path]:
    """Write the demo's gray source images as PNG into ``out_dir``; returns their paths.

    Each image of :data:`DEMO_IMAGES` is converted to the BT.601 studio-swing
    Y (:func:`jpegbench.codec.rgb_to_y`), reduced by the largest integer
    factor that keeps its short side at least ``size`` (mean of each
    factor x factor box, rounded), and centre-cropped to ``size`` x ``size``.
    """
    from skimage import data as skdata

    from jpegbench.codec import png_bytes, rgb_to_y
    from jpegbench._fs import write_atomic

    if isinstance(size, bool) or not isinstance(size, int) or not 64 <= size <= 300:
        raise InputError(f"size must be an integer in 64..300, got {size!r}")
    out = Path(out_dir)
    paths = []
    for name in DEMO_IMAGES:
        img = np.asarray(getattr(skdata, name)())
        gray = rgb_to_y(img[..., :3]) if img.ndim == 3 else img.astype(np.uint8)
        f = max(1, min(gray.shape) // size)
        h, w = gray.shape[0] // f, gray.shape[1] // f
        boxes = gray[: h * f, : w * f].reshape(h, f, w, f).astype(np.float64).mean(axis=(1, 3))
        gray = np.clip(np.round(boxes), 0, 255).astype(np.uint8)
        y0, x0 = (h - size) // 2, (w - size) // 2
        crop = np.ascontiguousarray(gray[y0 : y0 + size, x0 : x0 + size])
        path = out / f"{name}.png"
        data = png_bytes(crop)
        if not path.is_file() or path.read_bytes() != data:
            write_atomic(path, data)
        paths.append(path)
    return paths


def run_demo(
    out_dir: str | os.PathLike[str] = "jpegbench-demo",
    *,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Run the whole pipeline on built-in images and write a report.

    Parameters
    ----------
    out_dir : path, default "jpegbench-demo"
        Created if needed; holds ``sources/``, ``corpus/single``,
        ``corpus/double``, ``results/`` and ``report/``. Re-running resumes.
    device : str, optional
        Torch device for the networks (default CUDA if available, else CPU).
    progress : bool, default True
        Stage messages and progress bars on stderr.

    Returns
    -------
    Path
        ``out_dir/report/report.html``.

    Raises
    ------
    WeightsError
        The small models shipped with the package are absent (a source
        checkout before training); nothing is computed then.
    """
    from jpegbench.models.weights import default_weights
    from jpegbench._fs import write_atomic
    from jpegbench.evaluate import evaluate, flexibility, flexibility_path
    from jpegbench.report import build_report
    from jpegbench.synth import load_recipe, synthesize

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    # The demo is about the shipped models: fail before any work when they are absent.
    for role in ("fbcnn", "fbcnn-a"):
        default_weights(role)
    start = time.perf_counter()
    shipped = {m: str(default_weights("fbcnn-a" if m == "fbcnn-a" else "fbcnn")) for m in DEMO_METHODS if m != "jpeg"}

    _say(f"1/5 sources: {len(DEMO_IMAGES)} skimage.data photographs, gray, {DEMO_SIZE}x{DEMO_SIZE}", progress)
    demo_sources(out / "sources")
    results = {}
    for step, (kind, body) in enumerate((("double", _DOUBLE), ("single", _SINGLE)), 2):
        recipe_path = out / f"demo-{kind}.toml"
        text = _HEADER.format(what=kind, n=len(DEMO_IMAGES), size=DEMO_SIZE) + body
        if not recipe_path.is_file() or recipe_path.read_text(encoding="utf-8") != text:
            write_atomic(recipe_path, text)
        corpus = out / "corpus" / kind
        _say(f"{step}/5 {kind} JPEG corpus -> {corpus}", progress)
        synthesize(load_recipe(recipe_path), corpus, workers=1, progress=progress)
        results[kind] = out / "results" / f"{kind}.parquet"
        _say(f"{step}/5 evaluate {', '.join(DEMO_METHODS)} on the {kind} corpus -> {results[kind]}", progress)
        try:
            evaluate(corpus, methods=DEMO_METHODS, weights=shipped, device=device, out=results[kind],
                     progress=progress)
        except ResultsError as exc:
            # Results of other weights or another corpus (e.g. after an upgrade): the demo's output
            # is disposable, so it starts that step over rather than stopping.
            _say(f"{step}/5 {exc}; starting this evaluation over", progress)
            flexibility_path(results[kind]).unlink(missing_ok=True)
            evaluate(corpus, methods=DEMO_METHODS, weights=shipped, device=device, out=results[kind],
                     progress=progress, resume=False)

    flex_path = flexibility_path(results["double"])
    if not flex_path.is_file():
        _say("4/5 flexibility: PSNR against a manual QF for two samples", progress)
        from jpegbench.synth import read_manifest

        m = read_manifest(out / "corpus" / "double")
        pick = m[(~m["aligned"]) & (m["qf1"] < m["qf2"])].sort_values(["qf2", "sample_id"])
        ids = [str(pick[pick["source"].str.startswith(n)]["sample_id"].iloc[0]) for n in ("camera", "coffee")
               if pick["source"].str.startswith(n).any()]
        flex = flexibility(out / "corpus" / "double", ids, DEMO_FLEX_QFS, method="fbcnn",
                           weights=shipped["fbcnn"], device=device)
        write_atomic(flex_path, flex.to_csv(index=False, lineterminator="\n"))
    _say("5/5 report", progress)
    report = build_report([results["double"], results["single"]], out / "report")
    _say(f"done in {time.perf_counter() - start:.0f} s: {report}", progress)
    return report
