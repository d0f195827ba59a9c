"""MSECurves to and from files (save/load, to_arrays/from_arrays) and the curve cache built on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jpegbench.errors import ImageReadError, ShapeError
from jpegbench.estimate import CurveCache, MSECurves, mse_curves

SHA = "ab" * 32


@pytest.fixture(scope="module")
def curves() -> MSECurves:
    from skimage import data

    return mse_curves(data.camera()[:64, :80], qfs=range(20, 100, 10), backend="fast", shifts=[(0, 0), (4, 4)])


def _same(a: MSECurves, b: MSECurves) -> None:
    np.testing.assert_array_equal(a.mse, b.mse)  # NaN of the shifts not computed included
    np.testing.assert_array_equal(a.qfs, b.qfs)
    assert (a.backend, a.image_shape, a.crop_shape) == (b.backend, b.image_shape, b.crop_shape)
    assert a.mse.dtype == b.mse.dtype == np.float64 and a.qfs.dtype == b.qfs.dtype == np.int64


def test_save_load_round_trip(curves, tmp_path):
    path = curves.save(tmp_path / "c.npz")
    back = MSECurves.load(path)
    _same(curves, back)
    assert back.conventions == json.loads(json.dumps(curves.conventions, default=str))
    assert not list(tmp_path.glob(".*.part"))  # written through a temporary file


def test_arrays_round_trip_and_layout(curves):
    arrays = curves.to_arrays()
    assert list(arrays) == ["mse", "qfs", "backend", "image_shape", "crop_shape", "conventions"]
    _same(curves, MSECurves.from_arrays(arrays))


def test_from_arrays_needs_only_mse_and_qfs(curves):
    back = MSECurves.from_arrays({"mse": curves.mse, "qfs": list(curves.qfs)})
    assert (back.backend, back.image_shape, back.crop_shape, back.conventions) == ("fast", (0, 0), (0, 0), {})


def test_from_arrays_refuses_a_shape_mismatch(curves):
    with pytest.raises(ShapeError, match=r"mse must have shape \(8, 8, 7\)"):
        MSECurves.from_arrays({"mse": curves.mse, "qfs": curves.qfs[:7]})


def test_load_of_a_foreign_file_is_a_project_error(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(ImageReadError, match="not a file of MSE curves"):
        MSECurves.load(tmp_path / "x.npz")
    with pytest.raises(ImageReadError):
        MSECurves.load(tmp_path / "missing.npz")


def test_cache_put_get(curves, tmp_path):
    cache = CurveCache(tmp_path / "cache")
    assert cache.get(SHA) is None
    cache.put(SHA, curves, 1.25)
    hit = cache.get(SHA)
    assert hit is not None and hit[1] == 1.25
    _same(curves, hit[0])
    # An entry is a plain curves file: MSECurves.load reads it, ignoring the cache's extra key.
    (entry,) = (tmp_path / "cache").glob("*.npz")
    _same(curves, MSECurves.load(entry))


def test_cache_misses_on_bad_keys_damaged_entries_and_other_software(curves, tmp_path, monkeypatch):
    cache = CurveCache(tmp_path)
    cache.put("not-a-sha", curves, 1.0)
    assert not list(tmp_path.glob("*.npz"))
    cache.put(SHA, curves, 1.0)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    assert cache.get(SHA) is None  # damaged: recomputed, never trusted
    cache.put(SHA, curves, 1.0)
    import jpegbench.estimate.curves as c

    monkeypatch.setattr(c, "FAST_CURVES_REVISION", c.FAST_CURVES_REVISION + 1)
    assert CurveCache(tmp_path).get(SHA) is None  # another fast backend: another tag


def test_unwritable_cache_folder_means_no_cache(curves, tmp_path):
    (tmp_path / "file").write_text("a file where the folder would be")
    cache = CurveCache(tmp_path / "file" / "cache")
    cache.put(SHA, curves, 1.0)  # no error
    assert cache.get(SHA) is None
