"""Build script: only the optional C kernel of the fast MSE-curve backend (everything else is in pyproject.toml).

``optional=True``: without a working C compiler the install still succeeds and
the fast backend uses its torch implementation (same curves, slower on CPU).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "jpegbench.estimate._csse",
            sources=["jpegbench/estimate/_csse.c"],
            extra_compile_args=["-O3", "-funroll-loops", "-fno-trapping-math", "-fno-math-errno", "-fwrapv", "-Wno-psabi"],
            optional=True,
        )
    ]
)
