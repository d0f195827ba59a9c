"""Build script: only the optional C kernel of the fast MSE-curve backend (everything else is in pyproject.toml).

``optional=True``: without a working C compiler the install still succeeds and
the fast backend uses its torch implementation (same curves, slower on CPU).

The kernel's group width (blocks processed together, ``JB_LANES``) suits the
vector registers of the CPU that builds it: 32 where it has AVX-512, else 8
(on an AVX2-only CPU, emulated, 8 computed the curves twice as fast as
32; see ``_csse.c`` and BENCHMARKS.md). The sums are the same at every width. Set
``JPEGBENCH_KERNEL_LANES`` (4, 8, 16, 32 or 64) to choose, e.g. when the
build runs on another kind of CPU than the one that will use it.
"""

import os

from setuptools import Extension, setup

_WIDTHS = ("4", "8", "16", "32", "64")


def _lanes() -> str:
    choice = os.environ.get("JPEGBENCH_KERNEL_LANES", "").strip()
    if choice:
        if choice not in _WIDTHS:
            raise SystemExit(f"error: JPEGBENCH_KERNEL_LANES must be one of {', '.join(_WIDTHS)}, got {choice!r}")
        return choice
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: the widest groups, as before this choice existed
        return "32"
    return "32" if "avx512f" in flags or not flags else "8"


setup(
    ext_modules=[
        Extension(
            "jpegbench.estimate._csse",
            sources=["jpegbench/estimate/_csse.c"],
            define_macros=[("JB_LANES", _lanes())],
            extra_compile_args=["-O3", "-funroll-loops", "-fno-trapping-math", "-fno-math-errno", "-fwrapv", "-Wno-psabi"],
            optional=True,
        )
    ]
)
