"""FBCNN models: architecture, weights I/O, tiled inference, restoration methods."""

from jpegbench.models.fbcnn import FBCNN

__all__ = ["FBCNN"]
