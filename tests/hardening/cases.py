"""The bad inputs of the hardening suite, what each command must do with them, and the docs table.

Every input is built from one small synthetic image (40x48, RGB) by a
builder ``make(folder) -> (path, expected_pixels)``; ``expected_pixels`` is
what :func:`jpegbench.codec.read_image` must return for inputs that are
converted rather than refused (None for refused inputs).

Each input has two outcomes:

* ``inspect``: ``inspect`` reads the markers only (no pixel decoding), so it
  *describes* CMYK, 12-bit, arithmetic-coded, oversized ... files and refuses
  only what it cannot parse;
* ``decode``: every command that decodes pixels (``restore``, ``synth``
  sources, ``train`` images, ``estimate``) converts or refuses alike, because
  they all read through :func:`jpegbench.codec.read_image`.

``docs/hardening.md`` holds :func:`render_table` verbatim between two
markers; ``test_docs_table_is_in_sync`` checks it and rewrites it when
``JPEGBENCH_REGEN_DOCS=1``.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

H, W = 40, 48
SMALL_LIMIT = 1000  # JPEGBENCH_MAX_PIXELS of the decompression-bomb case (the image has 1920 pixels)
HUGE_FILE = 2 * 2**30  # a sparse file over the default JPEGBENCH_MAX_FILE_BYTES (512 MiB)
TOML_LIMIT = 2**20  # jpegbench._config.MAX_TOML_BYTES: recipes and training configs


def base_rgb(seed: int = 0) -> np.ndarray:
    """A textured 40x48 RGB image (gradients, an edge, mild noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0) + 30 * (xx > W / 2)
    chans = [base + rng.normal(0, 8, base.shape) + 20 * c for c in range(3)]
    return np.clip(np.round(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)


def base_gray(seed: int = 0) -> np.ndarray:
    from jpegbench.codec import rgb_to_y

    return rgb_to_y(base_rgb(seed))


def good_jpeg(seed: int = 0, **kw) -> bytes:
    from jpegbench.codec import encode

    return encode(base_rgb(seed), 50, **kw)


def _segment(data: bytes, marker: int) -> tuple[int, int]:
    """(offset of the 0xFF, segment length field) of the first ``marker`` segment."""
    pos = 2
    while pos < len(data):
        m = data[pos + 1]
        (n,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if m == marker:
            return pos, n
        pos += 2 + n
    raise AssertionError(f"no marker 0xFF{marker:02X}")


def _pil_bytes(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


# --- builders: (folder) -> (path, expected pixels or None) ----------------------------------------------

Built = tuple[Path, "np.ndarray | None"]


def _write(folder: Path, name: str, data: bytes, expected: np.ndarray | None = None) -> Built:
    p = folder / name
    p.write_bytes(data)
    return p, expected


def _patched(offset_of: Callable[[bytes], int], value: int | bytes, name: str):
    def make(folder: Path) -> Built:
        data = bytearray(good_jpeg())
        i = offset_of(bytes(data))
        if isinstance(value, int):
            data[i] = value
        else:
            data[i : i + len(value)] = value
        return _write(folder, name, bytes(data))

    return make


def _sof(data: bytes) -> int:
    return _segment(data, 0xC0)[0]


def _truncated(where: str):
    def make(folder: Path) -> Built:
        data = good_jpeg()
        sos = data.find(b"\xff\xda")
        cut = {"header": sos // 2, "scan": (sos + len(data)) // 2, "eoi": len(data) - 2}[where]
        return _write(folder, f"trunc-{where}.jpg", data[:cut])

    return make


def _dht(kind: str):
    def make(folder: Path) -> Built:
        data = bytearray(good_jpeg())
        i, n = _segment(bytes(data), 0xC4)
        if kind == "counts":  # 16 x 255 codes: more than the segment holds
            data[i + 5 : i + 21] = b"\xff" * 16
        else:  # valid structure, scrambled code values
            for k in range(i + 21, i + 2 + n):
                data[k] ^= 0x5A
        return _write(folder, f"dht-{kind}.jpg", bytes(data))

    return make


def _cmyk(transform: int | None):
    def make(folder: Path) -> Built:
        from PIL import Image

        data = _pil_bytes(Image.fromarray(base_rgb()).convert("CMYK"), "JPEG", quality=50)
        if transform is not None:  # Adobe APP14: ... transform byte at offset 11 of the payload
            a = data.find(b"Adobe")
            if a < 0:  # no Adobe marker written: insert one after SOI
                app14 = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + bytes([transform])
                data = data[:2] + app14 + data[2:]
            else:
                data = data[: a + 11] + bytes([transform]) + data[a + 12 :]
        return _write(folder, "ycck.jpg" if transform == 2 else "cmyk.jpg", data)

    return make


def _progressive(folder: Path) -> Built:
    from jpegbench.codec import decode

    data = good_jpeg(progressive=True)
    return _write(folder, "progressive.jpg", data, decode(data))


def _exif_rotated(folder: Path) -> Built:
    from PIL import Image

    from jpegbench.codec import decode

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _pil_bytes(Image.fromarray(base_rgb()), "JPEG", quality=50, exif=exif.tobytes())
    return _write(folder, "exif-rotated.jpg", data, decode(data))  # stored grid: 40x48, not 48x40


def _trailing_garbage(folder: Path) -> Built:
    from jpegbench.codec import decode

    data = good_jpeg()
    return _write(folder, "trailing-garbage.jpg", data + b"\x00garbage after EOI" * 4, decode(data))


def _png(name: str, make_img: Callable[[], tuple[object, np.ndarray]], suffix: str = ".png"):
    def make(folder: Path) -> Built:
        img, expected = make_img()
        return _write(folder, name + suffix, _pil_bytes(img, "PNG"), expected)

    return make


def _rgba():
    from PIL import Image

    rgb = base_rgb()
    alpha = np.linspace(0, 255, H * W).reshape(H, W).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha])), rgb  # alpha dropped, no compositing


def _la():
    from PIL import Image

    g = base_gray()
    return Image.merge("LA", (Image.fromarray(g), Image.fromarray(255 - g))), g


def _sixteen():
    from PIL import Image

    v = (base_gray().astype(np.uint16) * 257 + np.arange(W, dtype=np.uint16)[None, :] % 100).astype(np.uint16)
    return Image.fromarray(v), np.clip(np.round(v / 257.0), 0, 255).astype(np.uint8)


def _palette():
    from PIL import Image

    img = Image.fromarray(base_rgb()).quantize(16)
    return img, np.asarray(img.convert("RGB")).copy()


def _bilevel():
    from PIL import Image

    img = Image.fromarray(base_gray() > 128).convert("1")
    return img, np.where(base_gray() > 128, 255, 0).astype(np.uint8)


def _tiny(n: int, fmt: str):
    def make(folder: Path) -> Built:
        from jpegbench.codec import decode, encode, png_bytes

        g = base_gray()[:n, :n]
        if fmt == "jpg":
            data = encode(g, 50)
            return _write(folder, f"tiny-{n}x{n}.jpg", data, decode(data))
        return _write(folder, f"tiny-{n}x{n}.png", png_bytes(g), g)

    return make


def _png_named_jpg(folder: Path) -> Built:
    from jpegbench.codec import png_bytes

    return _write(folder, "png-named.jpg", png_bytes(base_rgb()), base_rgb())


def _truncated_png(folder: Path) -> Built:
    from jpegbench.codec import png_bytes

    data = png_bytes(base_rgb())
    return _write(folder, "trunc.png", data[: len(data) // 2])


def _tiff(mode: str):
    def make(folder: Path) -> Built:
        from PIL import Image

        if mode == "F":
            img = Image.fromarray(base_gray().astype(np.float32))
        else:
            img = Image.fromarray(base_rgb()).convert(mode)
        return _write(folder, f"tiff-{mode.lower()}.tif", _pil_bytes(img, "TIFF"))

    return make


def _fifo(folder: Path) -> Built:
    p = folder / "fifo.jpg"
    os.mkfifo(p)  # reading it would block for ever
    return p, None


def _huge_file(folder: Path) -> Built:
    p = folder / "huge-file.jpg"
    with open(p, "wb") as f:
        f.truncate(HUGE_FILE)  # sparse: no disk used; reading it whole would take 2 GiB of memory
    return p, None


def _good_env_limit(folder: Path) -> Built:
    return _write(folder, "bomb.jpg", good_jpeg())


# --- the table ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """``error`` is a regex the one-line message must contain; None means the input is accepted."""

    error: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def ok(note: str) -> Outcome:
    return Outcome(None, note)


def refused(pattern: str, note: str = "") -> Outcome:
    return Outcome(pattern, note)


@dataclass(frozen=True)
class ImageCase:
    """A bad (or unusual) image file and what ``inspect`` and the decoding commands do with it."""

    id: str
    what: str
    make: Callable[[Path], Built]
    inspect: Outcome
    decode: Outcome
    env: dict[str, str] = field(default_factory=dict)
    min_size_sensitive: bool = False  # refused by restore (8x8) / train (patch) / synth crop for its size
    restore_error: str | None = None  # restore refuses what other decoding commands accept (e.g. 16-bit)


NOT_JPEG = refused("not a JPEG file")
TOO_BIG_FILE = refused(f"file of {HUGE_FILE} bytes is over the limit of 536870912 bytes",
                       "from its size, before reading")

IMAGE_CASES: tuple[ImageCase, ...] = (
    ImageCase("empty-file", "0-byte file named .jpg", lambda d: _write(d, "empty.jpg", b""),
              refused("empty file"), refused("empty file")),
    ImageCase("text-as-jpg", "a text file named .jpg", lambda d: _write(d, "notes.jpg", b"hello, not an image\n"),
              refused(r"not a JPEG file \(no SOI marker\)"), refused("not an image file")),
    ImageCase("truncated-in-header", "JPEG cut inside a marker segment", _truncated("header"),
              refused("truncated or corrupt segment"), refused("truncated or corrupt segment")),
    ImageCase("truncated-in-scan", "JPEG cut half-way through the scan data", _truncated("scan"),
              refused("truncated JPEG"), refused("truncated")),
    ImageCase("truncated-no-eoi", "JPEG missing only its EOI marker", _truncated("eoi"),
              refused("truncated JPEG"), refused("truncated")),
    ImageCase("huffman-table-counts", "DHT segment with impossible code counts", _dht("counts"),
              refused("corrupt Huffman table"), refused("corrupt Huffman table")),
    ImageCase("huffman-table-values", "DHT segment with scrambled code values", _dht("values"),
              ok("described: the table's structure is valid (markers only)"), refused("cannot decode JPEG")),
    ImageCase("progressive", "progressive JPEG", _progressive,
              ok("described (mode progressive)"), ok("decoded like baseline")),
    ImageCase("cmyk", "CMYK JPEG (Pillow, Adobe transform 0)", _cmyk(None),
              ok("described (color cmyk)"), refused("CMYK JPEG is not supported")),
    ImageCase("ycck", "YCCK JPEG (Adobe APP14 transform 2)", _cmyk(2),
              ok("described (color ycck)"), refused("YCCK JPEG is not supported")),
    ImageCase("precision-12", "JPEG whose SOF says 12-bit samples", _patched(lambda d: _sof(d) + 4, 12, "p12.jpg"),
              ok("described (precision 12)"), refused("12-bit JPEG is not supported")),
    ImageCase("arithmetic-sof9", "arithmetic-coded JPEG (SOF9)", _patched(lambda d: _sof(d) + 1, 0xC9, "arith.jpg"),
              ok("described (coding arithmetic)"), refused("arithmetic-coded JPEG is not supported")),
    ImageCase("lossless-sof3", "lossless JPEG (SOF3)", _patched(lambda d: _sof(d) + 1, 0xC3, "lossless.jpg"),
              ok("described (mode lossless)"), refused("lossless JPEG is not supported")),
    ImageCase("zero-size-frame", "SOF with width and height 0",
              _patched(lambda d: _sof(d) + 5, b"\0\0\0\0", "zero.jpg"),
              refused("zero size"), refused("0x0 image is smaller than the minimum")),
    ImageCase("huge-dimensions", "1 kB JPEG whose SOF claims 65535x65535", _patched(
        lambda d: _sof(d) + 5, b"\xff\xff\xff\xff", "huge.jpg"),
              ok("described (no pixels decoded)"), refused("over the limit of")),
    ImageCase("over-pixel-limit", f"40x48 JPEG with JPEGBENCH_MAX_PIXELS={SMALL_LIMIT}", _good_env_limit,
              ok("described (no pixels decoded)"), refused(f"over the limit of {SMALL_LIMIT}"),
              env={"JPEGBENCH_MAX_PIXELS": str(SMALL_LIMIT)}),
    ImageCase("exif-rotated", "JPEG with EXIF orientation 6", _exif_rotated,
              ok("described; EXIF orientation 6 reported"), ok("stored pixel grid, orientation NOT applied")),
    ImageCase("trailing-garbage", "JPEG with bytes after EOI", _trailing_garbage,
              ok("described"), ok("decoded; trailing bytes ignored")),
    ImageCase("png-named-jpg", "PNG file named .jpg", _png_named_jpg,
              NOT_JPEG, ok("read by content, not by name")),
    ImageCase("png-rgba", "RGBA PNG", _png("rgba", _rgba),
              NOT_JPEG, ok("alpha dropped (no compositing)")),
    ImageCase("png-la", "gray + alpha PNG", _png("la", _la),
              NOT_JPEG, ok("alpha dropped: gray")),
    ImageCase("png-16bit", "16-bit gray PNG", _png("gray16", _sixteen),
              NOT_JPEG, ok("scaled to 8 bits: round(v / 257); refused by restore (it restores decoded 8-bit "
                            "JPEGs): `more than 8 bits per sample is not supported`"),
              restore_error="more than 8 bits per sample is not supported"),
    ImageCase("png-palette", "palette PNG", _png("palette", _palette),
              NOT_JPEG, ok("palette expanded to RGB")),
    ImageCase("png-bilevel", "1-bit PNG", _png("bilevel", _bilevel),
              NOT_JPEG, ok("1-bit becomes 0/255 gray")),
    ImageCase("png-truncated", "PNG cut in half", _truncated_png,
              NOT_JPEG, refused("cannot decode image")),
    ImageCase("tiff-float", "32-bit float TIFF", _tiff("F"),
              NOT_JPEG, refused("image mode F is not supported")),
    ImageCase("tiff-cmyk", "CMYK TIFF", _tiff("CMYK"),
              NOT_JPEG, refused("image mode CMYK is not supported")),
    ImageCase("image-1x1", "1x1 PNG", _tiny(1, "png"),
              NOT_JPEG, ok("read; refused for its size by restore, train, estimate, synth recipes"),
              min_size_sensitive=True),
    ImageCase("image-7x7", "7x7 JPEG", _tiny(7, "jpg"),
              ok("described"), ok("read; refused for its size by restore, train, estimate, synth recipes"),
              min_size_sensitive=True),
    ImageCase("fifo", "a named pipe called .jpg", _fifo,
              refused("not a regular file"), refused("not a regular file")),
    ImageCase("huge-file", "2 GiB (sparse) file named .jpg, over JPEGBENCH_MAX_FILE_BYTES (default 512 MiB)",
              _huge_file, TOO_BIG_FILE, TOO_BIG_FILE),
)

#: Minimum sizes: restore refuses images under 8x8; train under its patch size (16 in the tests);
#: the synth recipe of the tests crops 8x8, so smaller sources fail recipe validation.
MIN_SIZE_MESSAGES = {
    "restore": r"smaller than the minimum 8x8",
    "train": r"smaller than the minimum 16x16",
    "synth": r"expected a crop that fits .*, got 8x8",
    "estimate": r"(smaller than the minimum|at least) 16x16",
}


@dataclass(frozen=True)
class CommandCase:
    """A bad argument, path or config for one command: ``error`` is a regex on the one-line message."""

    id: str
    command: str
    what: str
    error: str


COMMAND_CASES: tuple[CommandCase, ...] = (
    # paths
    CommandCase("missing-path", "inspect", "a path that does not exist", "no such file"),
    CommandCase("missing-path", "restore", "a path that does not exist", "no such file or directory"),
    CommandCase("missing-path", "synth", "recipe source.path that does not exist", r"source\.path.*no such file"),
    CommandCase("missing-path", "evaluate", "a corpus folder that does not exist", "no such corpus directory"),
    CommandCase("missing-path", "report", "a results file that does not exist", "no such results file"),
    CommandCase("missing-path", "train", "a config file that does not exist", r"training config \S+: cannot read"),
    CommandCase("missing-path", "estimate", "a path that does not exist", "no such file or directory"),
    CommandCase("empty-directory", "estimate", "a folder with no images", "directory contains no images"),
    CommandCase("output-under-a-file", "estimate", "--out FILE/sub/qf.csv", "cannot write here"),
    CommandCase("bad-output-suffix", "estimate", "--out qf.txt", "--out must end in .parquet or .csv"),
    CommandCase("unknown-estimator", "estimate", "--estimator nope", "estimator must be one of"),
    CommandCase("directory-as-file", "inspect", "a directory where a JPEG is expected", "is a directory"),
    CommandCase("directory-as-file", "report", "a directory where a results file is expected", "results file"),
    CommandCase("empty-directory", "restore", "a folder with no images", "directory contains no images"),
    CommandCase("empty-directory", "synth", "recipe source.path: a folder with no images",
                r"source\.path.*contains no images"),
    CommandCase("empty-directory", "evaluate", "an empty folder as corpus", r"not a corpus \(no manifest"),
    CommandCase("empty-directory", "train", "data.train_dir: a folder with no images", "contains no images"),
    CommandCase("device-as-file", "inspect", "/dev/zero (never ends)", "not a regular file"),
    # outputs: tests run as root, which ignores permissions, so "not writable" is a path under a regular file
    CommandCase("output-under-a-file", "restore", "--out FILE/sub", "cannot create output directory"),
    CommandCase("output-overwrites-input", "restore", "--out the folder of the PNG inputs",
                "the output would overwrite this input"),
    CommandCase("output-under-a-file", "synth", "--out FILE/sub", "cannot create the corpus directory"),
    CommandCase("output-under-a-file", "train", "--out FILE/sub", "cannot create output folder"),
    CommandCase("output-under-a-file", "evaluate", "--out FILE/sub/results.parquet",
                "(cannot|not a directory|Not a directory)"),
    CommandCase("output-under-a-file", "report", "--out FILE/sub", "(cannot|not a directory|Not a directory)"),
    # recipes (synth)
    CommandCase("recipe-wrong-type", "synth", "qf = \"fifty\"",
                r"stages\[1\]\.qf': expected an integer in 1\.\.100, got string 'fifty'"),
    CommandCase("recipe-unknown-key", "synth", "a misspelt key (colour)",
                "'colour': expected one of the keys .*, got an unknown key"),
    CommandCase("recipe-out-of-range", "synth", "qf = 101",
                r"stages\[1\]\.qf': expected an integer in 1\.\.100, got 101"),
    CommandCase("recipe-invalid-toml", "synth", "not TOML", "invalid TOML"),
    CommandCase("recipe-binary", "synth", "a JPEG given as the recipe", "invalid TOML"),
    CommandCase("recipe-empty", "synth", "an empty recipe", r"'color': expected .* \(required\), got nothing"),
    CommandCase("recipe-too-large", "synth", "a valid recipe padded to 2 MiB (over MAX_TOML_BYTES, 1 MiB)",
                f"over the limit of {TOML_LIMIT} bytes for TOML files"),
    CommandCase("recipe-fifo", "synth", "a named pipe as the recipe (reading it would block)", "not a regular file"),
    CommandCase("bad-seed", "synth", "--seed -1", "seed override must be an integer >= 0"),
    CommandCase("bad-workers", "synth", "--workers 0", "--workers must be >= 1"),
    CommandCase("locked-output", "synth", "a second run on a corpus being written", "in use by another jpegbench run"),
    CommandCase("locked-output", "evaluate", "a second run on a results file being written",
                "results.parquet is in use by another jpegbench run"),
    # training configs
    CommandCase("config-wrong-type", "train", "optim.steps = \"ten\"",
                r"optim\.steps': expected an integer >= 1, got string 'ten'"),
    CommandCase("config-unknown-key", "train", "a misspelt key (data.trian_dir)",
                "training config key 'data.trian_dir': expected one of the keys .*, got an unknown key"),
    CommandCase("config-out-of-range", "train", "data.patch_size = 20 (not a multiple of 8)",
                r"data\.patch_size': expected an integer >= 8 and a multiple of 8, got 20"),
    CommandCase("config-invalid-toml", "train", "not TOML", "invalid TOML"),
    CommandCase("config-binary", "train", "a JPEG given as the config", "invalid TOML"),
    CommandCase("config-too-large", "train", "a valid config padded to 2 MiB (over MAX_TOML_BYTES, 1 MiB)",
                f"over the limit of {TOML_LIMIT} bytes for TOML files"),
    CommandCase("config-fifo", "train", "a named pipe as the config (reading it would block)", "not a regular file"),
    # restore arguments and weights
    CommandCase("qf-out-of-range", "restore", "--qf 500", r"--qf must be in 1\.\.100"),
    CommandCase("bad-tile", "restore", "--tile 12 (not a multiple of 8)", "tile must be a multiple of 8"),
    CommandCase("bad-max-pixels", "restore", "--max-pixels 0", "--max-pixels must be an integer >= 1"),
    CommandCase("unknown-method", "restore", "--method fbcnn-x", "unknown method 'fbcnn-x'"),
    CommandCase("weights-missing", "restore", "--weights nowhere/x.pth", "weights file not found"),
    CommandCase("weights-directory", "restore", "--weights DIR", "weights path is not a file"),
    CommandCase("weights-text", "restore", "--weights notes.pth (text)", "not a PyTorch checkpoint"),
    CommandCase("weights-truncated", "restore", "--weights half of a real checkpoint",
                "not a PyTorch checkpoint or truncated"),
    CommandCase("weights-pickle-payload", "restore", "--weights evil.pth (__reduce__ creates a file)",
                "refused to unpickle: not a plain-tensor checkpoint"),
    CommandCase("weights-pickle-payload", "evaluate", "--weights fbcnn=evil.pth", "refused to unpickle"),
    CommandCase("weights-pickle-payload", "train", "model.init_from = evil.pth", "refused to unpickle"),
    CommandCase("resume-state-pickle-payload", "train", "an evil last.pt in the run folder (resume)",
                "cannot resume from .*last.pt"),
    CommandCase("weights-nan", "restore", "--weights with a NaN", "NaN or Inf"),
    CommandCase("weights-inf", "restore", "--weights with an Inf", "NaN or Inf"),
    CommandCase("weights-huge-sparse", "restore", "--weights 3 GiB sparse file", "over the limit of"),
    CommandCase("weights-bogus-sparse", "restore", "--weights 1.5 GiB sparse file of zeros",
                "not a PyTorch checkpoint"),
    # evaluate / report inputs
    CommandCase("corpus-manifest-garbage", "evaluate", "manifest.parquet overwritten with text", "manifest"),
    CommandCase("corpus-file-altered", "evaluate", "a corpus JPEG truncated after synthesis", "sha256 differs"),
    CommandCase("bad-methods", "evaluate", "--methods nope", "unknown method 'nope'"),
    CommandCase("bad-weights-arg", "evaluate", "--weights fbcnn (no =PATH)", "--weights expects METHOD=PATH"),
    CommandCase("results-not-parquet", "report", "a text file as results", "not a Parquet results file"),
    CommandCase("results-foreign-parquet", "report", "a Parquet file not written by evaluate",
                "not a jpegbench results file"),
)


# --- documentation ---------------------------------------------------------------------------------------

DOC_BEGIN = "<!-- BEGIN GENERATED: tests/hardening/cases.py -->"
DOC_END = "<!-- END GENERATED -->"


def _cell(o: Outcome) -> str:
    if o.ok:
        return f"accepted: {o.note}"
    msg = o.error.replace("\\", "").replace("|", "/")
    return f"refused: `{msg}`" + (f" ({o.note})" if o.note else "")


def render_table() -> str:
    """The Markdown tables of docs/hardening.md (images, then commands)."""
    lines = [
        "### Image files",
        "",
        "`inspect` reads markers only; *decoding commands* are `restore` (skips the file, lists it, exit 1 "
        "unless `--skip-bad`), `synth` (recipe refused: `recipe key 'source.path': ...`), `train` "
        "(config refused) and `estimate` (skips like `restore`; refuses images under 16x16). The library's "
        "`jpegbench.estimate.estimate_file` reads JPEG files only (their tables are half its answer): it "
        "refuses what `inspect` refuses, then what decoding refuses.",
        "",
        "| case | input | inspect | decoding commands |",
        "|---|---|---|---|",
    ]
    for c in IMAGE_CASES:
        lines.append(f"| `{c.id}` | {c.what} | {_cell(c.inspect)} | {_cell(c.decode)} |")
    lines += ["", "### Paths, outputs, configs, weights", "", "| case | command | input | error message contains |",
              "|---|---|---|---|"]
    for c in COMMAND_CASES:
        msg = c.error.replace("\\", "").replace("|", "/")
        lines.append(f"| `{c.id}` | {c.command} | {c.what} | `{msg}` |")
    return "\n".join(lines) + "\n"


def n_distinct_inputs() -> int:
    return len(IMAGE_CASES) + len({c.id for c in COMMAND_CASES})
