"""Property-based fuzzing of every input a user gives (issue #12): network files, saved
``.npz`` networks, folding files, command-line numbers and image arrays.

The property everywhere: success, or one named error (:class:`~lowbit_hdl.errors.UserError`
from the API, one ``lowbit_hdl <cmd>: error:`` line and exit status 1 or 2 from the command
line); never a traceback, and never a silent change (what loads is what was written).
Bounded: a few dozen examples each, tiny networks, the build stops before the RTL
(``build --dry-run``).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
from helpers import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lowbit_hdl import FC, UINT, MaxPool, Network, TopK
from lowbit_hdl.errors import UserError
from lowbit_hdl.flow.folding import Folding, apply_folding, load_folding
from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.netfile import load, load_network, save
from lowbit_hdl.runtime.preprocess import PreprocessError, to_frames

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
WORK = Path(tempfile.mkdtemp(prefix="lowbit_fuzz_"))


# -- hostile network files ---------------------------------------------------------------------

#: values a field may be given: wrong types and ranges (drawn now and then)
BAD = st.one_of(st.integers(-2, 12), st.floats(-2, 12), st.none(), st.booleans(),
                st.sampled_from(["'3'", "'x'", "[2]", "UINT(2)", "BIPOLAR", "INT(2)",
                                 "UINT(9)", "2**40", "float('nan')"]))


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy = BAD) -> st.SearchStrategy:
    """``good`` about four times in five, else ``bad``."""
    return st.integers(0, 4).flatmap(lambda i: bad if i == 4 else good)


def _src(v: object) -> str:
    return v if isinstance(v, str) else repr(v)


DTYPE_SRC = st.sampled_from(["BIPOLAR", "UINT(2)", "INT(2)", "UINT(1)", "INT(4)"])


@st.composite
def layer_source(draw, i: int) -> str:
    kind = draw(st.sampled_from(["Conv", "FC", "FC", "MaxPool", "TopK", "junk"]))
    name = draw(mostly(st.just(f"'l{i}'"), st.sampled_from(["'l0'", "'a b'", "3"])))
    small = st.sampled_from([1, 2, 4])
    if kind == "Conv":
        args = [draw(mostly(small)), draw(mostly(st.integers(1, 3)))]
        keys = {"stride": small, "padding": st.integers(0, 1), "pe": small, "simd": small,
                "weight_dtype": DTYPE_SRC, "act": DTYPE_SRC, "pad_value": st.integers(-1, 1)}
    elif kind == "FC":
        args = [draw(mostly(small))]
        keys = {"pe": small, "simd": small, "weight_dtype": DTYPE_SRC,
                "act": st.one_of(DTYPE_SRC, st.none())}
    elif kind == "MaxPool":
        args, keys = [], {"kernel": small, "stride": small, "pe": small, "padding": st.one_of(
            small, st.sampled_from(["'same'", "'valid'", "'full'", "(0, 1, 0, 1)", "(1, 2)",
                                    "(0, 1, 0, 1.0)", "(0, 5, 0, 0)"]))}
    elif kind == "TopK":
        args, keys = [], {"k": small}
    else:
        return draw(st.sampled_from(["'fc9'", "None", "3", "Network"]))
    chosen = draw(st.lists(st.sampled_from(sorted(keys)), max_size=3, unique=True))
    kw = {k: draw(mostly(keys[k])) for k in chosen}
    parts = [name, *(_src(a) for a in args), *(f"{k}={_src(v)}" for k, v in kw.items())]
    return f"{kind}({', '.join(parts)})"


@st.composite
def network_source(draw) -> str:
    n = draw(st.integers(0, 4))
    layers = [draw(layer_source(i)) for i in range(n)]
    shape = draw(mostly(st.sampled_from(["(1, 4, 4)", "(2, 4, 4)", "(4, 2, 2)"]),
                        st.sampled_from(["(1, 4.5, 4)", "(0, 4, 4)", "(1, 4)", "'x'"])))
    dtype = draw(mostly(st.sampled_from(["UINT(8)", "BIPOLAR", "UINT(2)"]),
                        st.sampled_from(["INT(4)", "None", "3"])))
    tail = draw(mostly(st.just(""), st.sampled_from([
        "\n1 / 0", "\nnetwork = 3", "\nPARAMS = 'missing.npz'", "\nPARAMS = 5",
        "\nnetwork.randomize(0)", "\nnetwork.layers[0].weights = np.ones((2, 2))",
        "\nnetwork.layers[0].weights = np.full((2, 2), 0.5)"])))
    return ("import numpy as np\nfrom lowbit_hdl import *\n"
            f"network = Network('n', {shape}, [{', '.join(layers)}], {dtype}){tail}\n")


@FUZZ
@given(network_source())
def test_fuzz_network_files(capsys, source):
    path = WORK / "net.py"
    path.write_text(source)
    try:
        net = load_network(path, seed=0)
    except UserError:
        net = None
    rc, out, _ = cli(["info", str(path)], capsys)
    if net is None:
        return
    assert rc == 0, out
    # what loaded is what the file says: no field rounded or replaced
    for lay in net.layers:
        for key in ("pe", "simd", "kernel", "stride", "k", "out_features", "out_channels"):
            v = getattr(lay, key, None)
            assert v is None or type(v) is int
    try:
        plan_network(net, 100.0)
    except UserError:
        return
    rc, out, _ = cli(["build", str(path), "--random-weights", "--dry-run"], capsys)
    assert rc in (0, 1)


# -- hostile .npz files ------------------------------------------------------------------------


def _reference() -> tuple[Network, bytes]:
    net = Network("g", (1, 2, 2), [FC("fc0", 4, act=UINT(2)), MaxPool("p", 1),
                                   FC("fc1", 2, act=None), TopK("t")], UINT(8)).randomize(0)
    path = save(net, WORK / "ref.npz")
    return net, path.read_bytes()


REF, REF_BYTES = _reference()


def _same(a: Network, b: Network) -> bool:
    from lowbit_hdl.netfile import to_json

    if to_json(a) != to_json(b):
        return False
    return all(np.array_equal(getattr(x, k, None), getattr(y, k, None))
               for x, y in zip(a.layers, b.layers, strict=True)
               for k in ("weights", "thresholds") if hasattr(x, k))


@FUZZ
@given(st.data())
def test_fuzz_damaged_npz(capsys, data):
    raw = bytearray(REF_BYTES)
    how = data.draw(st.sampled_from(["cut", "flip", "junk", "zero"]))
    if how == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "junk":
        raw = raw + data.draw(st.binary(min_size=1, max_size=64))
    else:
        i = data.draw(st.integers(0, len(raw) - 8))
        raw[i:i + 8] = bytes(8)
    path = WORK / "bad.npz"
    path.write_bytes(bytes(raw))
    try:
        net = load(path)
    except UserError as e:
        assert str(e).startswith(str(path))
        rc, _, _ = cli(["info", str(path)], capsys)
        assert rc == 1
        return
    assert _same(net, REF), f"{how}: a damaged file loaded as a different network"


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False),
              st.sampled_from(["UINT99", "BIPOLAR", "fc", "conv", "topk", "fc0", "INT2", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(
                                ["kind", "name", "pe", "simd", "out_features", "k", "act",
                                 "weight_dtype", "kernel", "colour"]), inner, max_size=4)),
    max_leaves=12)


@FUZZ
@given(st.data())
def test_fuzz_network_description(capsys, data):
    from lowbit_hdl.netfile import to_json

    d = to_json(REF)
    key = data.draw(st.sampled_from([*d, "layers.0", "layers.1", "layers.2", "extra"]))
    value = data.draw(JSONISH)
    if key.startswith("layers."):
        d["layers"][int(key[-1])] = value
    else:
        d[key] = value
    arrays = {"__network__": np.frombuffer(json.dumps(d).encode(), np.uint8)}
    arrays.update({f"{lay.name}/{k}": getattr(lay, k) for lay in REF.layers
                   for k in ("weights", "thresholds") if getattr(lay, k, None) is not None})
    if data.draw(st.booleans()):  # hostile parameter arrays too
        name = data.draw(st.sampled_from(sorted(arrays)[1:]))
        arrays[name] = data.draw(hnp.arrays(
            st.sampled_from([np.int64, np.float64, np.uint64, np.int8, np.bool_]),
            hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))
    path = WORK / "desc.npz"
    np.savez(path, **arrays)
    try:
        net = load(path)
    except UserError:
        rc, _, _ = cli(["info", str(path)], capsys)
        assert rc == 1
        return
    net.infer(check_params=True)  # what loads is valid
    rc, _, _ = cli(["info", str(path)], capsys)
    assert rc == 0


# -- folding files -----------------------------------------------------------------------------


@FUZZ
@given(JSONISH)
def test_fuzz_folding_files(value):
    path = WORK / "folding.json"
    path.write_text(json.dumps(value))
    try:
        folding = load_folding(path)
        folded = apply_folding(REF, folding)
    except UserError:
        return
    assert isinstance(folding, Folding)
    for name, entry in folding.items():  # applied exactly as written
        for key, v in entry.to_json().items():
            assert getattr(folded[name], key) == v


# -- command-line numbers ----------------------------------------------------------------------

NUMBER_TEXT = st.one_of(st.integers(-10**6, 10**7).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["nan", "inf", "-0", "1e400", "x", "", "0x10", "2.5"]))


@FUZZ
@given(st.sampled_from(["--clock-mhz", "--target-fps", "--jobs", "--lut-budget",
                        "--bram-budget"]), NUMBER_TEXT)
def test_fuzz_cli_numbers(capsys, option, text):
    rc, out, _ = cli(["build", str(WORK / "ref.npz"), "--dry-run", option, text], capsys)
    if rc == 0:
        value = float(text)
        assert math.isfinite(value) and value >= 0
        assert "nothing was written" in out
    else:
        assert rc in (1, 2)


# -- image arrays into the runtime -------------------------------------------------------------

DTYPES = st.sampled_from([np.uint8, np.int64, np.float32, np.bool_, np.uint16, np.int8])


@FUZZ
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6)),
       st.sampled_from([(1, 4, 4), (3, 2, 2), (1, 1, 1), (4, 3, 5)]),
       st.sampled_from(["UINT8", "UINT2", "BIPOLAR", "INT4", "UINT99"]),
       st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_fuzz_to_frames(images, shape, dtype, resize, crop, convert, quantized):
    try:
        frames = to_frames(images, shape, dtype, resize=resize, crop=crop, convert=convert,
                           quantized=quantized)
    except PreprocessError:
        return
    assert frames.ndim == 4 and frames.shape[1:] == shape and frames.dtype == np.int64
    assert len(frames) >= 1
    from lowbit_hdl.runtime.dtypes import parse_dtype

    assert parse_dtype(dtype).allowed(frames)
    if quantized:  # only checked, never changed
        assert np.array_equal(frames.reshape(-1), np.asarray(images).reshape(-1))

