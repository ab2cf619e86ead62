"""Every bad input gets a named error, nothing is silently replaced (issue #12).

Each probe runs the command line and checks: exit status 1 (bad input) or 2 (bad option
value), one line ``… lowbit_hdl <cmd>: error: …`` naming the file, layer and rule, no
traceback, and nothing written to ``--out``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from lowbit_hdl import FC, UINT, Network, NetworkError, TopK
from lowbit_hdl.errors import MissingParametersError, NetworkFileError, NetworkTypeError
from lowbit_hdl.netfile import load, load_network, save

ROOT = Path(__file__).resolve().parent.parent

#: a tiny topology without parameters; {extra} is appended to the file
TOPOLOGY = """\
import numpy as np
from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK

network = Network("tiny", (1, 2, 2), [
    FC("fc0", 4, act=UINT(2), weight_dtype={wdt}),
    FC("fc1", 2, act=None),
    TopK("top"),
], UINT(8))
{extra}
"""


def topology(tmp_path: Path, extra: str = "", wdt: str = "BIPOLAR", name: str = "net.py"
             ) -> Path:
    path = tmp_path / name
    path.write_text(TOPOLOGY.format(extra=extra, wdt=wdt))
    return path


def trained(wdt_weights: str = "np.ones((4, 4), int)") -> str:
    """Topology lines attaching weights to fc0 (thresholds 0, 100, 200) and to fc1."""
    return (f"network.layers[0].weights = {wdt_weights}\n"
            "network.layers[0].thresholds = np.array([[0, 100, 200]] * 4)\n"
            "network.layers[1].weights = np.ones((2, 4), int)\n")


# -- parameters: partial, absent, random ------------------------------------------------------


def test_partial_weights_are_an_error_naming_the_layers(tmp_path, capsys):
    path = topology(tmp_path, "network.layers[0].weights = np.ones((4, 4), int)\n"
                              "network.layers[0].thresholds = np.array([[0, 100, 200]] * 4)\n")
    out_dir = tmp_path / "o"
    for cmd in (["build", str(path), "--out", str(out_dir)], ["sim", str(path)],
                ["deploy-sim", str(path)]):
        rc, _, err = cli(cmd, capsys)
        assert rc == 1
        assert "layer fc1 has no weights or thresholds (layer fc0 has)" in err
        assert "--random-weights" in err and str(path) in err
    assert not out_dir.exists()
    with pytest.raises(MissingParametersError) as e:
        load_network(path, require_params=True)
    assert e.value.layers == ["fc1"]
    # asked for: only the missing layer gets random ones, fc0 keeps its own
    net = load_network(path, seed=0)
    assert net["fc0"].thresholds.tolist() == [[0, 100, 200]] * 4
    assert net.random_weights == {"fc1": 0}
    rc, out, err = cli(["build", str(path), "--random-weights", "--dry-run"], capsys)
    assert rc == 0
    assert "parameters: RANDOM weights and thresholds (seed 0) in layers fc1" in out
    assert "nothing was written" in out


def test_network_without_parameters_needs_random_weights(tmp_path, capsys):
    path = topology(tmp_path)
    rc, _, err = cli(["build", str(path), "--out", str(tmp_path / "o")], capsys)
    assert rc == 1 and "the network has no weights or thresholds" in err
    assert not (tmp_path / "o").exists()
    rc, out, _ = cli(["info", str(path)], capsys)  # info needs none, and says so
    assert rc == 0 and "parameters: none attached" in out
    net = load_network(path, seed=3)
    assert net.random_weights == {"fc0": 3, "fc1": 3}
    # the same values as a full randomize: seeds of older builds give the same weights
    ref = load_network(path).randomize(3)
    assert np.array_equal(ref["fc1"].weights, net["fc1"].weights)


def test_random_weights_are_recorded_in_report_and_bundle(tmp_path, capsys):
    path = topology(tmp_path, trained().split("network.layers[1]")[0])
    out_dir = tmp_path / "o"
    rc, out, err = cli(["build", str(path), "--out", str(out_dir), "--random-weights",
                        "--seed", "5", "--no-lint"], capsys)
    assert rc == 0, err
    assert "RANDOM weights and thresholds (seed 5) in layers fc1" in out + err
    rep = json.loads((out_dir / "report.json").read_text())
    assert rep["parameters"]["random_weights"] == {"fc1": 5}
    assert "RANDOM" in rep["parameters"]["note"]
    assert "RANDOM weights" in (out_dir / "deploy" / "README.md").read_text()
    for npz in (out_dir / "tiny.npz", out_dir / "deploy" / "tiny.npz"):
        back = load(npz)
        assert back.random_weights == {"fc1": 5}
        assert back["fc0"].thresholds.tolist() == [[0, 100, 200]] * 4
    # trained weights: nothing random anywhere
    full = topology(tmp_path, trained(), name="full.py")
    rc, out, err = cli(["build", str(full), "--dry-run"], capsys)
    assert rc == 0 and "RANDOM" not in out + err


def test_shipped_trained_network_needs_no_flag(capsys):
    rc, out, err = cli(["build", str(ROOT / "networks" / "tfc_w1a1_mnist.py"), "--dry-run"],
                       capsys)
    assert rc == 0 and "RANDOM" not in out + err


# -- parameter values -------------------------------------------------------------------------


@pytest.mark.parametrize("wdt, weights, shown", [
    ("BIPOLAR", "np.full((4, 4), 2)", "BIPOLAR values (±1), got 2"),
    ("BIPOLAR", "np.zeros((4, 4), int)", "BIPOLAR values (±1), got 0"),
    ("INT(2)", "np.full((4, 4), 5)", "INT2 values (whole numbers -2..1), got 5"),
    ("INT(2)", "np.full((4, 4), -3)", "INT2 values (whole numbers -2..1), got -3"),
    ("INT(2)", "np.full((4, 4), 0.5)", "INT2 values (whole numbers -2..1), got 0.5"),
])
def test_weight_values_outside_their_type(tmp_path, capsys, wdt, weights, shown):
    path = topology(tmp_path, trained(weights), wdt=wdt)
    for cmd in (["build", str(path), "--out", str(tmp_path / "o")], ["sim", str(path)],
                ["info", str(path)]):
        rc, _, err = cli(cmd, capsys)
        assert rc == 1
        assert f"{path}: layer fc0: weights must be {shown}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra, message", [
    ("network.layers[0].thresholds = np.array([[3, 2, 1]] * 4)", "thresholds must ascend"),
    ("network.layers[0].thresholds = np.array([[0.5, 1, 2]] * 4)", "thresholds must be integ"),
    ("network.layers[0].thresholds = None", "layer fc0: no thresholds attached"),
    ("network.layers[0].weights = np.array([['a'] * 4] * 4)", "must be an integer array"),
    ("network.layers[0].weights = np.ones((4, 4), bool)", "must be an integer array"),
    ("network.layers[1].thresholds = np.zeros((2, 1), int)", "act=None but thresholds"),
])
def test_threshold_and_array_checks(tmp_path, capsys, extra, message):
    path = topology(tmp_path, trained() + extra + "\n")
    rc, _, err = cli(["info", str(path)], capsys)
    assert rc == 1 and message in err


# -- the description: types, not rounded -----------------------------------------------------


@pytest.mark.parametrize("layer, message", [
    ('Conv("c", 4, kernel=2.5)', "layer c: kernel=2.5 must be an int, got float"),
    ('FC("f", 4, pe=2.0)', "layer f: pe=2.0 must be an int, got float"),
    ('FC("f", 4, pe=True)', "layer f: pe=True must be an int, got bool"),
    ('FC("f", 4, act="UINT2")', "layer f: act='UINT2' must be a DataType or None"),
    ('"fc9"', "layers[0]: expected a layer (Conv, FC, MaxPool or TopK), got str"),
    ('MaxPool("p", stride=1.5)', "layer p: stride=1.5 must be an int or None"),
])
def test_wrong_field_types_are_named(tmp_path, capsys, layer, message):
    path = tmp_path / "t.py"
    path.write_text("from lowbit_hdl import *\n"
                    f"network = Network('t', (4, 4, 4), [{layer}], UINT(8))\n")
    for cmd in ("info", "build"):
        rc, _, err = cli([cmd, str(path), "--random-weights"] if cmd == "build"
                         else [cmd, str(path)], capsys)
        assert rc == 1 and message in err, err
    with pytest.raises(NetworkTypeError):
        load_network(path)


def test_input_shape_is_not_rounded():
    net = Network("t", (1, 28.5, 28), [FC("f", 2, act=None), TopK("k")], UINT(8))
    with pytest.raises(NetworkError, match=r"input_shape must be \(C, H, W\), three ints"):
        net.infer()
    with pytest.raises(NetworkError, match="network name '../x'"):
        Network("../x", (1, 2, 2), [FC("f", 2)]).infer()


def test_user_file_error_points_at_its_line(tmp_path, capsys):
    path = tmp_path / "foo.py"
    path.write_text("from lowbit_hdl import *\n\nx = 1 / 0\n")
    rc, _, err = cli(["info", str(path)], capsys)
    assert rc == 1
    assert f"lowbit_hdl info: error: {path} line 3: ZeroDivisionError: division by zero" in err
    (tmp_path / "helper.py").write_text("def make():\n    return INT(1)\n")
    path.write_text("from lowbit_hdl import *\nimport helper\nhelper.INT = INT\n"
                    "network = helper.make()\n")
    rc, _, err = cli(["info", str(path)], capsys)
    assert rc == 1 and f"{tmp_path / 'helper.py'} line 2: ValueError: INT(1)" in err
    path.write_text("network = (\n")
    rc, _, err = cli(["info", str(path)], capsys)
    assert rc == 1 and f"{path} line 1: SyntaxError" in err


# -- damaged and foreign .npz files -----------------------------------------------------------


def _good_npz(tmp_path: Path) -> Path:
    net = Network("g", (1, 2, 2), [FC("fc0", 2, act=None), TopK("t")], UINT(8)).randomize(0)
    return save(net, tmp_path / "g.npz")


def _rewrite(path: Path, edit) -> Path:
    """The .npz with its __network__ JSON changed by ``edit(dict)`` (or raw bytes)."""
    with np.load(path) as z:
        arrays = dict(z)
    d = json.loads(bytes(arrays["__network__"]).decode())
    raw = edit(d)
    arrays["__network__"] = np.frombuffer(raw if isinstance(raw, bytes) else
                                          json.dumps(d).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def _damage(kind: str, tmp_path: Path) -> Path:
    good = _good_npz(tmp_path)
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    if kind == "truncated":
        bad.write_bytes(data[:len(data) // 2])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "random bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "flipped bit":
        with zipfile.ZipFile(good) as z:
            info = z.getinfo("fc0/weights.npy")
        h = info.header_offset  # local header: 30 bytes, name, extra field, then the data
        start = h + 30 + int.from_bytes(data[h + 26:h + 28], "little") + \
            int.from_bytes(data[h + 28:h + 30], "little")
        off = start + info.compress_size // 2
        bad.write_bytes(data[:off] + bytes([data[off] ^ 0x10]) + data[off + 1:])
    elif kind == "no __network__":
        np.savez(bad, images=np.zeros(3))
    elif kind == "unknown field":
        bad.write_bytes(data)
        _rewrite(bad, lambda d: d.update(colour="red"))
    elif kind == "UINT99":
        bad.write_bytes(data)
        _rewrite(bad, lambda d: d.update(input_dtype="UINT99"))
    elif kind == "non-UTF-8":
        bad.write_bytes(data)
        _rewrite(bad, lambda d: b"\xff\xfe{}")
    elif kind == "unknown layer field":
        bad.write_bytes(data)
        _rewrite(bad, lambda d: d["layers"][0].update(colour="red"))
    elif kind == "version":
        bad.write_bytes(data)
        _rewrite(bad, lambda d: d.update(version=7))
    elif kind == "pickle":
        np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        bad = tmp_path / "p.npz"
        bad.write_bytes((tmp_path / "p.npy").read_bytes())
    elif kind == "npy":
        np.save(tmp_path / "a.npy", np.arange(3))
        bad = tmp_path / "a.npz"
        bad.write_bytes((tmp_path / "a.npy").read_bytes())
    elif kind == "stray entry":
        with np.load(good) as z:
            np.savez(bad, **dict(z), **{"fc9/weights": np.ones(3, int)})
    return bad


@pytest.mark.parametrize("kind, message", [
    ("truncated", "damaged or not a .npz archive"),
    ("empty", "damaged or not a .npz archive"),
    ("random bytes", "damaged or not a .npz archive"),
    ("flipped bit", "damaged or not a .npz archive"),
    ("no __network__", "not a saved lowbit-hdl network (no __network__ entry"),
    ("unknown field", "unknown field(s) colour"),
    ("unknown layer field", "layer fc0: unknown field(s) colour for a fc layer"),
    ("UINT99", "input_dtype: UINT(99): width must be 1..32 bits"),
    ("non-UTF-8", "__network__ is not UTF-8 JSON"),
    ("version", "format version 7 is not supported"),
    ("pickle", "Object arrays cannot be loaded"),
    ("npy", "a single .npy array, not a saved network"),
    ("stray entry", "entries fc9/weights belong to no layer"),
])
def test_damaged_npz_is_named(tmp_path, capsys, kind, message):
    bad = _damage(kind, tmp_path)
    with pytest.raises(NetworkFileError, match=f"^{bad}: "):
        load(bad)
    for cmd in ("info", "build"):
        rc, _, err = cli([cmd, str(bad), "--out", str(tmp_path / "o")] if cmd == "build"
                         else [cmd, str(bad)], capsys)
        assert rc == 1 and message in err, err
    assert not (tmp_path / "o").exists()


# -- output folder and option values ----------------------------------------------------------


def test_out_that_cannot_be_a_folder(tmp_path, capsys):
    good = _good_npz(tmp_path)
    (tmp_path / "file").write_text("x")
    for out, what in ((tmp_path / "file", "is a file"),
                      (tmp_path / "file" / "sub", f"{tmp_path / 'file'} is a file")):
        rc, _, err = cli(["build", str(good), "--out", str(out)], capsys)
        assert rc == 1 and what in err
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("cmd, option, value", [
    ("build", "--target-fps", "0"), ("build", "--target-fps", "-5"),
    ("build", "--clock-mhz", "0"), ("build", "--clock-mhz", "nan"),
    ("build", "--jobs", "-3"), ("build", "--lut-budget", "0"),
    ("build", "--bram-budget", "-1"), ("info", "--clock-mhz", "0"),
    ("info", "--clock-mhz", "inf"), ("sim", "--clock-mhz", "0"),
    ("sim", "--target-fps", "-1"), ("deploy-sim", "--clock-mhz", "-2"),
    ("deploy-sim", "--count", "0"), ("deploy-sim", "--batch", "-1"),
])
def test_option_values_are_checked(tmp_path, capsys, cmd, option, value):
    good = _good_npz(tmp_path)
    rc, _, err = cli([cmd, str(good), option, value, *(["--out", str(tmp_path / "o")]
                                                        if cmd == "build" else [])], capsys)
    assert rc == 2
    assert f"argument {option}: must be" in err
    assert not (tmp_path / "o").exists()


def test_build_api_checks_numbers(tmp_path):
    from lowbit_hdl.errors import UsageError
    from lowbit_hdl.flow.build import build

    net = load(_good_npz(tmp_path))
    for kw in ({"clock_mhz": 0}, {"vivado_jobs": -3}, {"target_fps": -1.0},
               {"clock_mhz": float("nan")}):
        with pytest.raises(UsageError):
            build(net, tmp_path / "o", progress=None, **kw)
    assert not (tmp_path / "o").exists()


def test_deploy_sim_images_checked(tmp_path, capsys):
    good = _good_npz(tmp_path)
    np.savez(tmp_path / "zero_d.npz", images=np.uint8(3))
    rc, _, err = cli(["deploy-sim", str(good), "--images", str(tmp_path / "zero_d.npz")],
                     capsys)
    assert rc == 2 and "expected a batch of images" in err
    np.savez(tmp_path / "fl.npz", images=np.zeros((2, 1, 2, 2), np.uint8),
             labels=np.array([0.5, 1.0]))
    rc, _, err = cli(["deploy-sim", str(good), "--images", str(tmp_path / "fl.npz")], capsys)
    assert rc == 1 and "labels must be integers" in err
    (tmp_path / "dmg.npz").write_bytes(b"PK\x03\x04garbage")
    rc, _, err = cli(["deploy-sim", str(good), "--images", str(tmp_path / "dmg.npz")], capsys)
    assert rc == 1 and "damaged or not a .npz archive" in err


def test_folding_file_not_utf8(tmp_path, capsys):
    good = _good_npz(tmp_path)
    (tmp_path / "f.json").write_bytes(b"\xff\xfe{")
    rc, _, err = cli(["build", str(good), "--folding", str(tmp_path / "f.json"), "--out",
                      str(tmp_path / "o")], capsys)
    assert rc == 1 and "not valid JSON" in err
    (tmp_path / "f.json").write_text('{"fc0": {"pe": 2.0}}')
    rc, _, err = cli(["build", str(good), "--folding", str(tmp_path / "f.json"), "--out",
                      str(tmp_path / "o")], capsys)
    assert rc == 1 and "layer fc0: pe must be an integer, got 2.0" in err
    assert not (tmp_path / "o").exists()
