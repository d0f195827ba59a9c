"""The paper's "flexibility" experiment: PSNR of a blind network's restoration against a manual QF."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from jpegbench.errors import InputError
from jpegbench.evaluate.corpus import load_sample, read_corpus_manifest
from jpegbench.metrics import psnr, psnrb, ssim

__all__ = ["flexibility"]


def flexibility(
    corpus_dir: str | os.PathLike[str],
    sample_ids: Sequence[str],
    qfs: Sequence[int],
    *,
    method: str = "fbcnn",
    weights_dir: str | os.PathLike[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """PSNR of a restoration against a manual QF: the paper's "flexibility" experiment.

    Each sample's JPEG image is restored with ``method`` once per QF in
    ``qfs`` (the manual QF replaces the predicted one), and once blind.

    Parameters
    ----------
    corpus_dir : path
    sample_ids : sequence of str
        Samples of the corpus (a few: each costs ``len(qfs) + 1`` restorations).
    qfs : sequence of int
        Manual QFs, 1..100.
    method : {"fbcnn", "fbcnn-a"}, default "fbcnn"
    weights_dir, weights, device
        As in :func:`jpegbench.evaluate.evaluate`.

    Returns
    -------
    DataFrame
        Columns ``sample_id, qf1, qf2, dominant_qf, qf_predicted, qf,
        psnr, ssim, psnrb``; one row per (sample, manual QF).
    """
    from jpegbench.codec import check_qf

    corpus = Path(corpus_dir)
    if method not in ("fbcnn", "fbcnn-a"):
        raise InputError(f"flexibility needs a blind network method ('fbcnn' or 'fbcnn-a'), got {method!r}")
    if isinstance(sample_ids, str):
        sample_ids = [sample_ids]
    qfs = [check_qf(q) for q in qfs]
    if not qfs or not sample_ids:
        raise InputError("flexibility needs at least one sample id and one QF")
    manifest = read_corpus_manifest(corpus).set_index("sample_id", drop=False)
    unknown = [s for s in sample_ids if s not in manifest.index]
    if unknown:
        raise InputError(f"sample id(s) not in the corpus: {', '.join(map(str, unknown[:5]))}")
    from jpegbench.models.methods import get_method

    run = get_method(method, weights=weights, weights_dir=weights_dir, device=device)
    rows = []
    for sid in sample_ids:
        row = manifest.loc[sid].to_dict()
        lq, hq, _ = load_sample(corpus, row)
        blind = run(lq)
        for q in qfs:
            img = run(lq, qf=q).image
            rows.append({"sample_id": str(sid), "qf1": int(row["qf1"]), "qf2": int(row["qf2"]),
                         "dominant_qf": int(row["dominant_qf"]), "qf_predicted": float(blind.qf_predicted),
                         "qf": int(q), "psnr": psnr(hq, img), "ssim": ssim(hq, img), "psnrb": psnrb(hq, img)})
    return pd.DataFrame(rows)
