"""Making one corpus sample and journalling it: the worker side of the corpus writer.

A sample is a function of its :class:`~jpegbench.synth.recipe.SampleSpec`
only (source pixels, chain, encoder), so any process (a local worker, a Dask
worker, the parent) writes the same bytes. No pandas here: spawned workers
stay light. :mod:`jpegbench.synth.corpus` is the parent side.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from jpegbench._fs import atomic_write_bytes, sha256_bytes
from jpegbench.codec import image_from_bytes, png_bytes, read_regular_file
from jpegbench.errors import CorpusError, InputError
from jpegbench.synth.degrade import JpegStage, apply_chain, stages_to_json
from jpegbench.synth.recipe import SampleSpec

_SRC_CACHE: OrderedDict = OrderedDict()  # (path, sha256, color) -> pixels
_HQ_CACHE: OrderedDict = OrderedDict()  # (path, sha256, color, geometric stages) -> (png bytes, sha256)


def _remember(cache: OrderedDict, key: Any, value: Any, size: int = 4) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def _source_pixels(spec: SampleSpec, color: str, limits: dict[str, int]):
    # With its hash: a Dask worker's cache outlives the run, and the file may change before the next one.
    key = (str(spec.source), spec.source_sha256, color)
    if key in _SRC_CACHE:
        return _SRC_CACHE[key]
    # One read: the bytes checked against the recipe's hash are the bytes decoded.
    data = read_regular_file(spec.source, kind="an image", max_bytes=limits["max_file_bytes"])
    if sha256_bytes(data) != spec.source_sha256:
        raise CorpusError(f"{spec.source}: changed since the recipe was loaded (sha256 differs); run again")
    pixels = image_from_bytes(data, name=spec.source, color=color, max_pixels=limits["max_pixels"])
    return _remember(_SRC_CACHE, key, pixels, size=2)


def _write_sample_file(path: Path, data: bytes) -> None:
    """Write one lq / hq file in place (not through a temporary file, on purpose).

    The sample's journal row, written *after* its files, is what marks it
    done: a file cut short by a kill has no row, so a resumed run
    writes it again, and a run that is never resumed has no manifest. Skipping
    the temporary file, chmod and rename was most of the writer's overhead
    over a bare encode loop.
    """
    try:
        try:
            f = open(path, "wb")
        except FileNotFoundError:  # first file of a (sub)folder of the layout
            path.parent.mkdir(parents=True, exist_ok=True)
            f = open(path, "wb")
        with f:
            f.write(data)
    except OSError as exc:
        path.unlink(missing_ok=True)  # e.g. a full disk: no cut-short file is left behind
        raise InputError(f"{path}: cannot write here ({exc.strerror or exc})") from None


def _write_sample_file_atomic(path: Path, data: bytes) -> None:
    """Write one lq / hq file through a temporary name (Dask workers).

    On a cluster the same sample can be written twice at once: a worker the
    scheduler gave up on may still be running a task it re-ran elsewhere, or
    a killed client's last tasks may still run beside the next run's. Each
    writer renames a complete file, the same bytes, over the other's.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    atomic_write_bytes(path, data)


_JOURNALS: dict[str, Any] = {}  # corpus folder -> this process's journal, open for appending


def _append_row(out: Path, journal: dict[str, Any]) -> None:
    """Append one sample's journal row (one JSON line) to this process's journal file.

    One unbuffered file per writer process (``.rows/<pid>-<random>.jsonl``),
    opened once: each row is a single ``write`` that reaches the OS before the
    next sample starts, so it survives a kill of the process, without a file
    created and later deleted per sample.
    """
    f = _JOURNALS.get(str(out))
    path = out / ".rows"
    try:
        if f is None:
            path = path / f"{os.getpid()}-{os.urandom(4).hex()}.jsonl"
            f = _JOURNALS[str(out)] = open(path, "ab", buffering=0)
        else:
            path = Path(f.name)
        view = memoryview(json.dumps(journal, sort_keys=True).encode() + b"\n")
        while view:
            view = view[f.write(view) :]
    except OSError as exc:
        raise InputError(f"{path}: cannot write here ({exc.strerror or exc})") from None


def _close_journals() -> None:
    for f in _JOURNALS.values():
        f.close()
    _JOURNALS.clear()


def _read_journals(rows_dir: Path, fingerprint: str) -> dict[int, dict[str, Any]]:
    """Rows of the journal files in ``rows_dir`` (lines cut short or of another corpus are skipped)."""
    rows: dict[int, dict[str, Any]] = {}
    for p in sorted(rows_dir.glob("*.jsonl")):
        try:
            with open(p, "rb") as f:
                for line in f:
                    try:
                        j = json.loads(line)
                        if j["fingerprint"] == fingerprint:
                            rows[int(j["row"]["index"])] = j["row"]
                    except (ValueError, KeyError, TypeError):
                        continue
        except OSError:
            continue
    return rows


def _make_sample(spec: SampleSpec, cfg: dict[str, Any]) -> dict[str, Any]:
    out = Path(cfg["out_dir"])
    pixels = _source_pixels(spec, cfg["color"], cfg["limits"])
    res = apply_chain(pixels, spec.stages, **cfg["encoder"], decode_last=False)
    # The ground truth depends on the geometric stages only: the PNG is shared by every QF of an image.
    hq_key = (str(spec.source), spec.source_sha256, cfg["color"],
              tuple(s for s in spec.stages if not isinstance(s, JpegStage)))
    if hq_key in _HQ_CACHE:
        hq_bytes, hq_sha = _HQ_CACHE[hq_key]
    else:
        hq_bytes = png_bytes(res.hq_pixels)
        hq_bytes, hq_sha = _remember(_HQ_CACHE, hq_key, (hq_bytes, sha256_bytes(hq_bytes)))
    lq_bytes = res.lq_bytes
    assert lq_bytes is not None  # recipes end with a JPEG stage
    write = _write_sample_file_atomic if cfg.get("cluster") else _write_sample_file
    for rel, data in ((spec.lq_path, lq_bytes), (spec.hq_path, hq_bytes)):
        write(out / rel, data)
    p = res.params
    row = {
        "sample_id": spec.sample_id,
        "index": spec.index,
        "source": spec.source_name,
        "source_sha256": spec.source_sha256,
        "color": cfg["color"],
        "y_definition": "bt601-studio" if cfg["color"] == "gray" else "none",
        "qf1": p["qf1"],
        "qf2": p["qf2"],
        "qf_last": p["qf_last"],
        "dominant_qf": p["dominant_qf"],
        "n_jpeg": p["n_jpeg"],
        "qfs": json.dumps(p["qfs"], separators=(",", ":")),
        "stages": stages_to_json(spec.stages),
        "shift_dy": p["shift_dy"],
        "shift_dx": p["shift_dx"],
        "aligned": p["aligned"],
        "regime": p["regime"],
        **cfg["encoder_info"],
        "subsampling": cfg["encoder"]["subsampling"] if cfg["color"] == "rgb" else "none",
        "lq_path": spec.lq_path,
        "hq_path": spec.hq_path,
        "lq_sha256": sha256_bytes(lq_bytes),
        "hq_sha256": hq_sha,
        "lq_bytes": len(lq_bytes),
        "width": p["width"],
        "height": p["height"],
        "recipe_sha256": cfg["recipe_sha256"],
    }
    # Last: a row cut short by a kill is not valid JSON, so a resume ignores it and redoes
    # the sample; a complete row's files are complete (and verified by hash).
    if not cfg.get("cluster"):  # on a cluster the client writes the rows it receives
        _append_row(out, {"fingerprint": cfg["fingerprint"], "row": row})
    return row


def _make_samples(specs: list[SampleSpec], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    from jpegbench.codec.limits import limits

    if cfg.get("cluster"):
        _check_cluster_worker(cfg)
    # Every decode in a worker (sources, and the JPEG re-reads of the chain)
    # runs under the parent's limits, not the worker's inherited environment.
    with limits(**cfg["limits"]):
        return [_make_sample(s, cfg) for s in specs]


def _check_cluster_worker(cfg: dict[str, Any]) -> None:
    """Refuse to write on a Dask worker whose jpegbench or encoder differs from the client's.

    corpus.json records the client's versions; a worker with another
    libjpeg build would write other bytes under that record.
    """
    from jpegbench import __version__
    from jpegbench.codec import encoder_info

    mine = encoder_info(cfg["encoder"]["backend"], cfg["encoder"]["version"]).as_dict()
    if __version__ != cfg["jpegbench_version"] or mine != cfg["encoder_info"]:
        import socket

        raise CorpusError(
            f"Dask worker on {socket.gethostname()} has jpegbench {__version__} with encoder {mine}, the client "
            f"jpegbench {cfg['jpegbench_version']} with {cfg['encoder_info']}: "
            "install the same versions on every worker"
        )


def _init_worker() -> None:
    # Die with the parent (Linux): a killed run must not leave workers writing into DIR.
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort, not Linux
        pass


