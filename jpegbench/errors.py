"""The jpegbench exception tree.

Every error the library raises on purpose derives from :class:`JpegbenchError`,
and every leaf also subclasses the matching built-in, so ``except ValueError``
keeps working for callers who do not know about jpegbench::

    JpegbenchError
    ├── InputError (ValueError)           bad argument to a public function
    │   ├── QualityError                  QF outside 1..100
    │   ├── ShapeError                    wrong array shape / dtype / size
    │   └── ConfigError                   recipe / training config invalid
    ├── ImageReadError (OSError)          a file is missing, not an image, truncated
    │   └── UnsupportedImageError         an image kind we refuse (CMYK, 12-bit, ...)
    ├── ImageTooLargeError (ValueError)   over the pixel or file size limit
    ├── CodecError (RuntimeError)         an encoder/decoder backend failed
    ├── CorpusError (ValueError)          corpus directory / manifest invalid
    ├── ResultsError (ValueError)         results file not ours / malformed
    ├── WeightsError (ValueError)         checkpoint missing, unsafe or mismatched
    ├── LockError (RuntimeError)          output directory in use by another run
    └── ClusterError (RuntimeError)       Dask scheduler unreachable or missing, workers lost

The CLI catches :class:`JpegbenchError` once, prints ``error: <message>`` and
exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "JpegbenchError",
    "InputError",
    "QualityError",
    "ShapeError",
    "ConfigError",
    "ImageReadError",
    "UnsupportedImageError",
    "ImageTooLargeError",
    "CodecError",
    "CorpusError",
    "ResultsError",
    "WeightsError",
    "LockError",
    "ClusterError",
]


class JpegbenchError(Exception):
    """Base class of every error jpegbench raises on purpose."""


class InputError(JpegbenchError, ValueError):
    """A public function got an argument it cannot use."""


class QualityError(InputError):
    """A quality factor outside 1..100."""


class ShapeError(InputError):
    """An array of the wrong shape, dtype or size."""


class ConfigError(InputError):
    """A recipe or configuration file is invalid (names the key)."""


class ImageReadError(JpegbenchError, OSError):
    """A file is missing, unreadable, not an image, or truncated."""


class UnsupportedImageError(ImageReadError):
    """An image kind jpegbench refuses (CMYK/YCCK JPEG, 12-bit, ...)."""


class ImageTooLargeError(JpegbenchError, ValueError):
    """An image over the pixel limit (decompression-bomb guard) or a file over the file size limit."""


class CodecError(JpegbenchError, RuntimeError):
    """A JPEG backend failed while encoding or decoding."""


class CorpusError(JpegbenchError, ValueError):
    """A corpus directory or its manifest is missing or malformed."""


class ResultsError(JpegbenchError, ValueError):
    """A results file is not a jpegbench results table."""


class WeightsError(JpegbenchError, ValueError):
    """A checkpoint is missing, unsafe, corrupt or does not fit the model."""


class LockError(JpegbenchError, RuntimeError):
    """An output directory is being written by another jpegbench run."""


class ClusterError(JpegbenchError, RuntimeError):
    """The Dask scheduler cannot be reached or has no workers, distributed is missing, or workers kept dying."""
