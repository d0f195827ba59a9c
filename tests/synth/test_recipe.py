"""Recipe loading: validation errors name the key; sample expansion is deterministic."""

from __future__ import annotations

import pytest

from jpegbench.errors import ConfigError
from jpegbench.synth import CropStage, JpegStage, ShiftStage, load_recipe

BASE = """
seed = 1
color = "gray"
[source]
path = "src"
[[stages]]
op = "jpeg"
qf = [20, 60]
[[stages]]
op = "shift"
shift = [3, 5]
[[stages]]
op = "jpeg"
qf = 30
"""


@pytest.fixture
def base(image_folder, write_recipe):
    image_folder(3)
    return write_recipe(BASE)


def test_expansion_order_and_ids(base):
    r = load_recipe(base)
    s = r.samples()
    assert len(s) == 3 * 2
    assert [x.index for x in s] == list(range(6))
    assert s[0].sample_id == "img000__j20-s3x5-j30" and s[1].sample_id == "img000__j60-s3x5-j30"
    assert s[2].source_name == "img001.png"
    assert s[0].stages == (JpegStage(20), ShiftStage(3, 5), JpegStage(30))
    assert s[0].lq_path == "lq/img000__j20-s3x5-j30.jpg" and s[0].hq_path == "hq/img000__j20-s3x5-j30.png"
    assert r.samples() == load_recipe(base).samples()


def test_overrides(base, image_folder, tmp_path):
    other = image_folder(2, name="other")
    r = load_recipe(base, source=other, seed=9)
    assert r.seed == 9 and r.source_dir == other.resolve() and len(r.samples()) == 4


RANDOM = """
seed = 5
color = "rgb"
repeat = 3
[source]
path = "src"
[[stages]]
op = "crop"
size = [24, 24]
position = "random"
[[stages]]
op = "jpeg"
prob = 0.5
qf = {random = "uniform", min = 5, max = 95}
[[stages]]
op = "shift"
shift = "random-nonaligned"
[[stages]]
op = "jpeg"
qf = {random = "choice", values = [10, 50, 90]}
"""


def test_random_draws_depend_on_seed_and_index_only(image_folder, write_recipe):
    image_folder(4)
    p = write_recipe(RANDOM)
    a, b = load_recipe(p).samples(), load_recipe(p).samples()
    assert a == b
    assert load_recipe(p, seed=6).samples() != a
    assert len(a) == 12 and len({x.sample_id for x in a}) == 12
    n_jpeg = {sum(isinstance(s, JpegStage) for s in x.stages) for x in a}
    assert n_jpeg == {1, 2}
    for x in a:
        assert isinstance(x.stages[0], CropStage) and x.stages[0].height == 24
        assert x.stages[-1].qf in (10, 50, 90)
        shift = next(s for s in x.stages if isinstance(s, ShiftStage))
        assert (shift.dy, shift.dx) != (0, 0)


def test_ranges_and_grids(image_folder, write_recipe):
    image_folder(1)
    p = write_recipe(
        'color = "gray"\n[source]\npath = "src"\n'
        '[[stages]]\nop = "jpeg"\nqf = {min = 10, max = 50, step = 20}\n'
        '[[stages]]\nop = "shift"\nshift = "grid"\n'
        '[[stages]]\nop = "jpeg"\nqf = 75\n'
    )
    s = load_recipe(p).samples()
    assert len(s) == 3 * 64
    assert {x.stages[0].qf for x in s} == {10, 30, 50}


def test_by_chain_layout(image_folder, write_recipe):
    image_folder(2)
    p = write_recipe(BASE + '[output]\nlayout = "by-chain"\n')
    s = load_recipe(p).samples()
    assert s[0].lq_path == "lq/j20-s3x5-j30/img000.jpg"


def _mutate(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


@pytest.mark.parametrize(
    "old,new,message",
    [
        ('color = "gray"', 'colour = "gray"', "recipe key 'colour': expected one of the keys color, description, "),
        ('qf = [20, 60]', 'qff = [20, 60]', "recipe key 'stages[0].qff': expected one of the keys op, prob, qf, got an"
                                            " unknown key"),
        ('qf = [20, 60]', 'qf = [0, 60]', "recipe key 'stages[0].qf[0]': expected an integer in 1..100, got 0"),
        ('qf = 30', 'qf = 101', "recipe key 'stages[2].qf': expected an integer in 1..100, got 101"),
        ('shift = [3, 5]', 'shift = [8, 0]', "recipe key 'stages[1].shift': expected a pair [dy, dx] of integers in"
                                             " 0..7, got [8, 0]"),
        ('seed = 1', 'seed = "one"', "recipe key 'seed': expected an integer >= 0, got string 'one'"),
        ('qf = 30', 'qf = "high"', "recipe key 'stages[2].qf': expected an integer in 1..100, got string 'high'"),
        ('qf = 30', 'qf = 30.5', "recipe key 'stages[2].qf': expected an integer in 1..100, got float 30.5"),
        ('color = "gray"', 'color = "cmyk"', "recipe key 'color': expected one of 'gray', 'rgb', got 'cmyk'"),
        ('color = "gray"', '', "recipe key 'color': expected one of 'gray', 'rgb' (required), got nothing"),
        ('path = "src"', 'path = "nowhere"', "recipe key 'source.path':"),
        ('path = "src"', 'glob = "*.png"', "recipe key 'source.path': expected a string (required), got nothing"),
        ('op = "shift"', 'op = "blur"', "recipe key 'stages[1].op': expected one of 'jpeg', 'shift', 'crop', "
                                        "'resize', got 'blur'"),
        ('qf = [20, 60]', 'qf = [20, 20]', "recipe key 'stages[0].qf': expected distinct values, got 20 twice"),
        ('qf = [20, 60]', 'qf = []', "recipe key 'stages[0].qf': expected a non-empty array of values, each an "
                                     "integer in 1..100, got array []"),
        ('qf = [20, 60]', 'qf = {random = "uniform", min = 60, max = 20}', "recipe key 'stages[0].qf': expected "
                                                                           "min <= max, got min 60 > max 20"),
        ('qf = [20, 60]', 'qf = {random = "gauss", min = 1, max = 2}', "recipe key 'stages[0].qf.random': expected "
                                                                      "one of 'uniform', 'choice', got 'gauss'"),
        ('qf = [20, 60]', 'qf = {min = 10, max = 50, step = 0}', "recipe key 'stages[0].qf.step': expected an "
                                                                 "integer >= 1, got 0"),
        ('qf = [20, 60]', 'qf = [20, 60]\nprob = 1.5', "recipe key 'stages[0].prob': expected a number in 0..1, "
                                                       "got 1.5"),
        ('shift = [3, 5]', 'shift = {random = "uniform", min = 0, max = 7}', "recipe key 'stages[1].shift.random': "
                                                                            "expected 'choice'"),
        ('shift = [3, 5]', 'shift = "diagonal"', "recipe key 'stages[1].shift': expected one of 'grid', "),
        ('qf = 30', 'qf = 30\n[encoder]\nbackend = "opencv"', "recipe key 'encoder.backend'"),
        ('op = "shift"\nshift = [3, 5]', 'op = "crop"\nsize = [8, 8]\noffset = [0, 0]\nposition = "center"',
         "recipe key 'stages[1].offset': expected only one of 'offset' or 'position', got 'offset' and 'position'"),
        ('op = "shift"\nshift = [3, 5]', 'op = "resize"\nmethod = "area"',
         "recipe key 'stages[1].size': expected one of 'size' or 'scale', got neither"),
        ('op = "shift"\nshift = [3, 5]', 'op = "resize"\nscale = {min = 1, max = 2}',
         "recipe key 'stages[1].scale': expected a number > 0, a list of them, or a table {random = ...} (a range "
         "table needs integers), got table"),
        ('op = "shift"\nshift = [3, 5]', 'op = "resize"\nscale = inf',
         "recipe key 'stages[1].scale': expected a number > 0, got inf"),  # was accepted, then failed in resize
        ('qf = 30', 'qf = 30\n[output]\nlayout = "tree"', "recipe key 'output.layout': expected one of "
                                                                "'flat', 'by-chain', got 'tree'"),
    ],
)
def test_validation_errors_name_the_key(image_folder, write_recipe, old, new, message):
    image_folder(2)
    with pytest.raises(ConfigError) as info:
        load_recipe(write_recipe(_mutate(old, new)))
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_crop_larger_than_image(image_folder, write_recipe):
    image_folder(2, height=48, width=40)
    p = write_recipe(BASE.replace("[[stages]]", '[[stages]]\nop = "crop"\nsize = [48, 64]\n\n[[stages]]', 1))
    with pytest.raises(ConfigError, match=r"^recipe key 'stages\[0\].size': expected a crop that fits "
                                          r"img000.png \(48x40 at this stage\), got 48x64"):
        load_recipe(p)


def test_last_stage_must_be_jpeg(image_folder, write_recipe):
    image_folder(1)
    with pytest.raises(ConfigError, match=r"'stages\[1\].op': expected op = \"jpeg\" applied always \(prob = 1\) "
                                          r"as the last stage, got op = 'shift', prob = 1"):
        load_recipe(write_recipe('color = "gray"\n[source]\npath = "src"\n[[stages]]\nop = "jpeg"\nqf = 5\n'
                                 '[[stages]]\nop = "shift"\nshift = [1, 1]\n'))


def test_unreadable_source_image(image_folder, write_recipe):
    src = image_folder(2)
    data = (src / "img001.png").read_bytes()
    (src / "img001.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"^recipe key 'source.path': .*img001.png"):
        load_recipe(write_recipe(BASE))


def test_bad_toml_and_missing_file(tmp_path, write_recipe):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_recipe(write_recipe("color = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_recipe(tmp_path / "absent.toml")


def test_shipped_recipes_parse_without_sources(tmp_path, image_folder):
    # The shipped recipes are valid whatever the data: point them at small images.
    from pathlib import Path

    src = image_folder(2, height=160, width=160)
    root = Path(__file__).resolve().parents[2] / "datasets"
    t3 = load_recipe(root / "fbcnn-table3.toml", source=src)
    assert len(t3.samples()) == 2 * 9
    assert {x.stages[1] for x in t3.samples()} == {ShiftStage(4, 4)}
    train = load_recipe(root / "bsds500-random-train.toml", source=src)
    assert len(train.samples()) == 2 * 4


def test_ijcn_recipe_is_the_authors_double_protocol(tmp_path, image_folder):
    # test_colordouble_IJCN.py: QF1, QF2 in {30, 50}, shifts (0, 0) and (4, 4), colour 4:2:0.
    from pathlib import Path

    src = image_folder(2, height=160, width=160)
    root = Path(__file__).resolve().parents[2] / "datasets"
    r = load_recipe(root / "ijcn-double-color.toml", source=src)
    samples = r.samples()
    assert len(samples) == 2 * 8 and r.color == "rgb"
    assert {x.stages[1] for x in samples} == {ShiftStage(0, 0), ShiftStage(4, 4)}
    assert {(x.stages[0].qf, x.stages[2].qf) for x in samples} == {(a, b) for a in (30, 50) for b in (30, 50)}
