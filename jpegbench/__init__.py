"""jpegbench: JPEG forensics and degraded-dataset workbench around FBCNN.

Data flows one way::

    source images --synth--> corpus (lq/*.jpg, hq/*.png, manifest.parquet)
    corpus / any JPEG --estimate--> QF decisions + MSE curves
    corpus --restore (fbcnn, fbcnn-d, fbcnn-a, qcn, qgcn, ijcn, their -d twins, jpeg)--> restored images
    restored + hq --evaluate--> results.parquet --report--> tables, figures, HTML

Conventions (used everywhere in the package)
--------------------------------------------
* Pixels are ``uint8`` numpy arrays: ``(H, W)`` for gray, ``(H, W, 3)`` RGB.
* Tensors are ``(N, C, H, W)`` float32 in ``[0, 1]``.
* Quantization tables are ``(8, 8)`` integer arrays in natural (row-major)
  order, not zig-zag.
* A grid shift is ``(dy, dx)`` with ``0 <= dy, dx <= 7``: the number of rows
  and columns removed from the top left of the image.
* Quality factor is ``qf`` (1..100, IJG scale) everywhere.
* "gray" means the Y channel of MATLAB's ``rgb2ycbcr`` (BT.601 studio swing,
  rounded to uint8), the definition the FBCNN/KAIR code and the LIVE1 gray
  test set use; see :func:`jpegbench.codec.rgb_to_y`.
* Randomness takes a seed or a :class:`numpy.random.Generator`.

Heavy subpackages (torch models, evaluation, reports) are imported lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "errors", "codec", "metrics", "synth", "estimate", "models", "evaluate", "report", "pipeline"]

import importlib


def __getattr__(name: str):
    if name in {"errors", "codec", "metrics", "synth", "estimate", "models", "evaluate", "report", "pipeline"}:
        return importlib.import_module(f"jpegbench.{name}")
    raise AttributeError(f"module 'jpegbench' has no attribute {name!r}")
