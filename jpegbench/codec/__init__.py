"""Codec layer: JPEG encode/decode backends, quantization tables, DCT coefficients, block DCT, colour, image reading.

Everything above this layer (synth, estimate, metrics, models) touches JPEG
only through these functions, so the encoder used is always recorded.
"""

from jpegbench.codec._validate import check_pixels, check_qf, check_shift
from jpegbench.codec.backends import (
    BACKENDS,
    DCT_METHODS,
    SUBSAMPLINGS,
    EncoderInfo,
    decode,
    encode,
    encoder_info,
    jpeg_roundtrip,
)
from jpegbench.codec.coefficients import JpegCoefficients, read_coefficients
from jpegbench.codec.color import Y_DEFINITIONS, rgb_to_y, rgb_to_ycbcr, to_gray, ycbcr_to_rgb
from jpegbench.codec.dct import block_dct, block_idct, dct_matrix
from jpegbench.codec._validate import read_regular_file
from jpegbench.codec.header import JpegHeader, read_header
from jpegbench.codec.imageio import IMAGE_SUFFIXES, image_from_bytes, list_images, png_bytes, read_image, write_png
from jpegbench.codec.inspect import inspect_jpeg
from jpegbench.codec.limits import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PIXELS,
    default_max_file_bytes,
    default_max_pixels,
    limits,
)
from jpegbench.codec.qtables import IJG_CHROMA, IJG_LUMA, QtableQF, ijg_qtable, qf_from_qtables

__all__ = [
    "BACKENDS", "DCT_METHODS", "SUBSAMPLINGS", "EncoderInfo", "decode", "encode", "encoder_info",
    "jpeg_roundtrip", "Y_DEFINITIONS", "rgb_to_y", "rgb_to_ycbcr", "to_gray", "ycbcr_to_rgb",
    "block_dct", "block_idct", "dct_matrix", "JpegCoefficients", "read_coefficients", "JpegHeader",
    "read_header", "IMAGE_SUFFIXES", "DEFAULT_MAX_PIXELS", "DEFAULT_MAX_FILE_BYTES",
    "default_max_pixels", "default_max_file_bytes", "limits", "list_images", "png_bytes", "read_image",
    "image_from_bytes", "read_regular_file",
    "write_png", "IJG_CHROMA", "IJG_LUMA", "QtableQF", "ijg_qtable",
    "qf_from_qtables", "inspect_jpeg", "check_pixels", "check_qf", "check_shift",
]  # fmt: skip

