"""What produced a results table: software versions, the corpus recipe and manifest hashes, the weights and device used."""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from jpegbench import __version__
from jpegbench._fs import sha256_file

__all__ = ["software_versions", "recipe_text", "manifest_hash", "weights_info", "weights_sha256", "device_name"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def software_versions() -> dict[str, str]:
    """Versions of the software that shapes the numbers (no heavy imports)."""
    from jpegbench.codec import encoder_info

    return {
        "jpegbench": __version__,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "torch": _version("torch"),
        "pillow": _version("pillow"),
        "libjpeg-turbo": encoder_info("pillow").encoder_version,
        "jpeglib": _version("jpeglib"),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "platform": platform.platform(),
    }


def recipe_text(corpus: Path, manifest: pd.DataFrame) -> tuple[str, str]:
    """The corpus recipe text and its sha256 ('' when the corpus does not keep one)."""
    text = ""
    attrs = getattr(manifest, "attrs", {}) or {}
    for key in ("recipe", "recipe_text"):
        if isinstance(attrs.get(key), str):
            text = attrs[key]
            break
    if not text:
        for name in ("recipe.toml", "recipe.json"):
            if (corpus / name).is_file():
                text = (corpus / name).read_text(encoding="utf-8", errors="replace")
                break
    return text, hashlib.sha256(text.encode()).hexdigest() if text else ""


def manifest_hash(manifest: pd.DataFrame) -> str:
    """Identifies the corpus content: sample ids, paths and file hashes, in order."""
    cols = [c for c in ("sample_id", "lq_path", "hq_path", "lq_sha256", "hq_sha256") if c in manifest.columns]
    text = manifest[cols].astype(str).to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


_SHA_CACHE: dict[tuple[str, float, int], str] = {}


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """The full sha256 of a weights file, hashed once per (path, mtime, size) in this process (they can be large)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(p)
    return _SHA_CACHE[key]


def weights_info(path: str | None) -> dict[str, Any]:
    """The ``weights``, ``weights_sha256`` (12 hex digits) and ``weights_shipped`` columns for a weights file."""
    if not path:
        return {"weights": "", "weights_sha256": "", "weights_shipped": False}
    from jpegbench.models.weights import shipped_weights_dir

    p = Path(path)
    if not p.is_file():  # an in-memory model
        return {"weights": str(path), "weights_sha256": "", "weights_shipped": False}
    shipped = p.resolve().parent == shipped_weights_dir().resolve()
    return {"weights": p.name, "weights_sha256": weights_sha256(p)[:12], "weights_shipped": shipped}


def device_name(device: Any) -> str:
    """The torch device a run on ``device`` (None: CUDA if available) uses, as a string."""
    from jpegbench.models.inference import pick_device

    return str(pick_device(device))
