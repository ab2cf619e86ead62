"""QONNX import and export, checked against qonnx's own executor (``execute_onnx``).

Brevitas' bnn_pynq models are built with randomized batch-norm statistics and TensorNorm
parameters (so every threshold is non-trivial), exported with ``export_qonnx``, imported,
and run on the same inputs by qonnx's executor and by our golden model: the integer levels
after every quantizer and the class decisions must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the qonnx extra (pip install -e '.[qonnx]')")
pytest.importorskip("qonnx", reason="needs the qonnx extra (pip install -e '.[qonnx]')")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

from lowbit_hdl import golden, netfile  # noqa: E402
from lowbit_hdl.cli import main  # noqa: E402
from lowbit_hdl.errors import UnsupportedGraphError  # noqa: E402
from lowbit_hdl.ir import FC, Conv, MaxPool, Network, TopK  # noqa: E402
from lowbit_hdl.qonnx import check, import_model, to_model  # noqa: E402
from lowbit_hdl.qonnx.brevitas_models import export_bnn_pynq  # noqa: E402
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT  # noqa: E402

BATCH = 250


def _brevitas_qonnx(name: str, path, seed: int = 0) -> None:
    """Export bnn_pynq model ``name`` with random BN/TensorNorm parameters (batch BATCH)."""
    pytest.importorskip("torch")
    pytest.importorskip("brevitas", reason="needs the qonnx extra (brevitas)")
    export_bnn_pynq(name, path, seed, BATCH if "fc" in name else 100)


def _random_codes(net: Network, n: int, seed: int, lo: int | None = None,
                  hi: int | None = None) -> np.ndarray:
    """Random input levels of ``net`` (only ``lo..hi``: the codes a graph's input quantizer
    produces)."""
    rng = np.random.default_rng(seed)
    dt = net.input_dtype
    shape = (n, *net.input_shape)
    if dt.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(dt.min if lo is None else lo, (dt.max if hi is None else hi) + 1,
                        size=shape)


def _same_network(a: Network, b: Network) -> None:
    assert [(x.kind, x.name) for x in a.layers] == [(x.kind, x.name) for x in b.layers]
    for x, y in zip(a.layers, b.layers, strict=True):
        for k in ("weights", "thresholds"):
            u, v = getattr(x, k, None), getattr(y, k, None)
            assert (u is None and v is None) or np.array_equal(u, v), (x.name, k)


#: the bnn_pynq configurations checked in CI and their number of inputs (all eleven with
#: 1,000 inputs each: bench/qonnx_bnn_pynq.py)
CI_MODELS = {"tfc_1w1a": 1000, "tfc_1w2a": 1000, "tfc_2w2a": 1000, "cnv_1w1a": 200}


@pytest.mark.parametrize("name", CI_MODELS)
def test_bnn_pynq_matches_qonnx_executor(name, tmp_path):
    """Random inputs through qonnx's executor and the imported network; the raw export and
    the graph after qonnx's cleanup import to the same network."""
    path = tmp_path / f"{name}.onnx"
    _brevitas_qonnx(name, path)
    r = import_model(str(path))
    cleaned = cleanup_model(ModelWrapper(str(path)))
    _same_network(r.network, import_model(cleaned).network)
    kinds = [lay.kind for lay in r.network.layers]
    assert kinds.count("fc") == 4 if name.startswith("tfc") else \
        (kinds.count("conv"), kinds.count("fc"), kinds.count("maxpool")) == (6, 3, 2)
    # every thresholded layer and pool is compared where the graph has its values
    assert len(r.layers) == sum(1 for lay in r.network.layers
                                if getattr(lay, "act", None) is not None
                                or lay.kind == "maxpool")
    rep = check(r, CI_MODELS[name], seed=1)
    assert rep.ok, rep
    assert (rep.inputs, rep.layers) == (CI_MODELS[name], len(r.layers))
    assert rep.max_output_error < 1e-4
    # the thresholds are not trivial: every layer's activations take several levels
    out = golden.forward(r.network, _random_codes(r.network, 200, 2, r.input.min_code,
                                                  r.input.max_code))
    for lay in r.network.layers:
        if getattr(lay, "act", None) is not None:
            assert len(np.unique(out.intermediates[lay.name])) >= 2, lay.name
    # signed 2-bit activations: the last layer's per-class offset rides on one more neuron
    assert bool(r.notes) == ("2a" in name)


def _small_net() -> Network:
    return Network("small", (3, 8, 8), [
        Conv("c0", 8, 3, padding=1, weight_dtype=INT(2), act=UINT(2)),
        Conv("c1", 8, 3, padding=1, weight_dtype=BIPOLAR, act=BIPOLAR),
        MaxPool("p0", 2),
        Conv("c2", 8, 3, padding=1, weight_dtype=BIPOLAR, act=BIPOLAR),
        FC("f0", 16, weight_dtype=BIPOLAR, act=UINT(2)),
        FC("f1", 5, weight_dtype=INT(3), act=None),
        TopK("top", 2)], UINT(8)).randomize(3)


def test_export_runs_in_qonnx_executor_and_round_trips():
    net = _small_net()
    n = 200
    model = to_model(net, batch=n)
    x = _random_codes(net, n, 5)
    ctx = execute_onnx(model, {"global_in": x.astype(np.float32)},
                       return_full_exec_context=True)
    ref = golden.forward(net, x)
    np.testing.assert_array_equal(ctx[model.graph.output[0].name], ref.output.reshape(n, -1))
    for lay in net.layers[:-1]:
        got = ctx.get(f"{lay.name}_out", ctx.get(f"{lay.name}_acc"))
        want = ref.intermediates[lay.name]
        np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=lay.name)
    back = import_model(model).network
    assert [lay.kind for lay in back.layers] == [lay.kind for lay in net.layers]
    np.testing.assert_array_equal(golden.forward(back, x).output, ref.output)


def test_imported_tfc_exports_back(tmp_path):
    path = tmp_path / "tfc.onnx"
    _brevitas_qonnx("tfc_1w1a", path, seed=4)
    r = import_model(str(path))
    x = _random_codes(r.network, BATCH, 6)
    model = to_model(r.network, batch=BATCH)
    y = execute_onnx(model, {"global_in": x.astype(np.float32)})[model.graph.output[0].name]
    np.testing.assert_array_equal(y, golden.forward(r.network, x).output.reshape(BATCH, -1))


def test_commands(tmp_path, capsys):
    path = tmp_path / "tfc.onnx"
    _brevitas_qonnx("tfc_1w1a", path, seed=7)
    npz = tmp_path / "tfc.npz"
    assert main(["import", str(path), "--out", str(npz), "--check", "250"]) == 0
    assert "250 inputs" in capsys.readouterr().out
    net = netfile.load(npz)
    assert [lay.kind for lay in net.layers] == ["fc"] * 4 and net.input_dtype is BIPOLAR
    out = tmp_path / "back.onnx"
    assert main(["export-qonnx", str(npz), "--out", str(out)]) == 0
    m = ModelWrapper(str(out))
    x = _random_codes(net, 1, 8)
    y = execute_onnx(m, {"global_in": x.astype(np.float32)})[m.graph.output[0].name]
    np.testing.assert_array_equal(y, golden.forward(net, x).output.reshape(1, -1))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    capsys.readouterr()
    assert main(["import", str(bad), "--out", str(tmp_path / "x.npz")]) == 1
    assert capsys.readouterr().err.startswith("lowbit_hdl import: error: ")


# -- unsupported graphs ------------------------------------------------------------------------


def _graph(nodes, inits, out_shape):
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("qonnx.custom_op.general", 1)])
    return m


def _quant(src, dst, scale="one", bits="eight"):
    return helper.make_node("Quant", [src, scale, "zero", bits], [dst], name=f"q_{dst}",
                            domain="qonnx.custom_op.general", signed=1, narrow=0,
                            rounding_mode="ROUND")


_W = np.random.default_rng(0).choice([-1.0, 1.0], size=(4, 4, 3, 3))
_BASE = {"one": 1.0, "zero": 0.0, "eight": 8.0, "w": _W, "wf": _W * 0.37}


def _bq(src, dst):
    return helper.make_node("BipolarQuant", [src, "one"], [dst], name=f"bq_{dst}",
                            domain="qonnx.custom_op.general")


@pytest.mark.parametrize("case,node,op", [
    ("residual", "add", "Add"),
    ("softmax", "sm", "Softmax"),
    ("float_conv", "conv", "Conv"),
])
def test_unsupported_graphs_name_the_node(case, node, op):
    nodes = [_quant("x", "xq"), _bq("w", "wq")]
    if case == "residual":
        nodes += [helper.make_node("Conv", ["xq", "wq"], ["a"], name="conv", pads=[1] * 4),
                  _quant("a", "aq"),
                  helper.make_node("Conv", ["aq", "wq"], ["b"], name="conv2", pads=[1] * 4),
                  helper.make_node("Add", ["b", "a"], ["c"], name="add"), _bq("c", "y")]
    elif case == "softmax":
        nodes += [helper.make_node("Conv", ["xq", "wq"], ["a"], name="conv", pads=[1] * 4),
                  helper.make_node("Softmax", ["a"], ["s"], name="sm", axis=1), _bq("s", "y")]
    else:
        nodes += [helper.make_node("Conv", ["xq", "wf"], ["a"], name="conv", pads=[1] * 4),
                  _bq("a", "y")]
    with pytest.raises(UnsupportedGraphError) as e:
        import_model(_graph(nodes, _BASE, [1, 4, 6, 6]))
    assert (e.value.node, e.value.op) == (node, op)
    assert f"node '{node}' ({op}): " in str(e.value)


def test_exact_folding_at_the_boundary():
    """An accumulator exactly on a batch-norm boundary: ceil, not float rounding."""
    from lowbit_hdl.qonnx.surd import Surd

    # (acc - 3) · 1/√2 ≥ 0 ⇔ acc ≥ 3 exactly; a float would land on 2.9999… or 3.0000…
    z = (Surd(0) - Surd(-3) / Surd.sqrt(2)) / (Surd(1) / Surd.sqrt(2))
    assert z.ceil() == 3 and z.floor() == 3
    assert (Surd.sqrt(2) - Surd(140) / 99).sign() > 0  # 1.41414… < √2 < 1.41428…
    assert (Surd.sqrt(2) - Surd(99) / 70).sign() < 0
    assert (Surd(99) / 70 - Surd.sqrt(2)).sign() > 0 and Surd(0, 1, 2).ceil() == 2
