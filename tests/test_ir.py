"""Network description: shape inference, validation messages, cost model, files, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, NetworkError, TopK, golden
from lowbit_hdl.cli import main
from lowbit_hdl.cost import network_cost
from lowbit_hdl.netfile import load, load_network, save

NETWORKS = Path(__file__).resolve().parent.parent / "networks"
EXAMPLES = sorted(p for p in NETWORKS.glob("*.py") if p.stem != "bnn_pynq")


def net_of(*layers, shape=(3, 8, 8), dtype=UINT(8)):
    return Network("t", shape, list(layers), dtype)


@pytest.mark.parametrize("layers,shape,message", [
    ([FC("fc3", 10, pe=1, simd=40)], (64, 3, 3), "layer fc3: MW=576 is not a multiple of SIMD=40"),
    ([FC("fc1", 10, pe=3)], (1, 4, 4), "layer fc1: MH=10 is not a multiple of PE=3"),
    ([Conv("conv3", 8, 3, simd=2)], (3, 8, 8),
     "layer conv3: SIMD=2 does not divide the 3 input channels"),
    ([Conv("c", 8, 9)], (3, 8, 8), r"layer c: kernel 9×9 is larger than the padded input 8×8"),
    ([Conv("c", 8, 3, stride=0)], (3, 8, 8), "stride=0 must be ≥ 1"),
    ([FC("a", 4), FC("a", 4)], (1, 4, 4), "layer a: name used more than once"),
    ([FC("a", 4, act=None), TopK("t"), FC("b", 2)], (1, 4, 4), "TopK must be the last layer"),
    ([FC("a", 4, act=None), FC("b", 2)], (1, 4, 4), "act=None .* only allowed on the last"),
    ([FC("a", 4, weight_dtype=UINT(2))], (1, 4, 4), "weight_dtype=UINT2 is not supported"),
    ([FC("a", 4, act=INT(2))], (1, 4, 4), "act=INT2 is not supported"),
    ([FC("a", 4, act=None), TopK("t", k=5)], (1, 4, 4), r"layer t: k=5 must be in 1..4"),
    ([FC("a", 4), MaxPool("p", 2, pe=3)], (1, 4, 4), "layer p: kernel 2×2 is larger"),
    ([Conv("a", 4, 1), MaxPool("p", 2, pe=3)], (1, 4, 4), "layer p: PE=3 does not divide"),
    ([Conv("a", 4, 3, padding=1, pad_value=0)], (2, 4, 4), None),
    ([FC("bad name", 4)], (1, 4, 4), "must be a Python identifier"),
    ([FC("a", 4, pe=0)], (1, 4, 4), "PE=0 and SIMD=1 must be ≥ 1"),
    ([FC("a", 4, ram_style="ultra")], (1, 4, 4), "ram_style='ultra'"),
])
def test_validation_messages(layers, shape, message):
    dtype = BIPOLAR if message is None else UINT(8)
    net = Network("t", shape, layers, dtype)
    if message is None:  # pad value 0 is not a BIPOLAR value
        with pytest.raises(NetworkError, match="layer a: pad_value=0 is not a BIPOLAR value"):
            net.infer()
        return
    with pytest.raises(NetworkError, match=message):
        net.infer()


def test_parameter_checks():
    net = net_of(FC("f", 4, weight_dtype=BIPOLAR, act=UINT(2)), shape=(1, 2, 2))
    with pytest.raises(NetworkError, match="layer f: no weights attached"):
        net.infer(check_params=True)
    net.layers[0].weights = np.zeros((4, 4), dtype=int)
    with pytest.raises(NetworkError, match=r"layer f: weights must be BIPOLAR values \(±1\)"):
        net.infer(check_params=True)
    net.layers[0].weights = np.ones((4, 3), dtype=int)
    with pytest.raises(NetworkError, match=r"weights have shape \(4, 3\), expected \(4, 4\)"):
        net.infer(check_params=True)
    net.layers[0].weights = np.ones((4, 4), dtype=int)
    net.layers[0].thresholds = np.array([[3, 2, 1]] * 4)
    with pytest.raises(NetworkError, match="thresholds must ascend"):
        net.infer(check_params=True)
    net.layers[0].thresholds = np.array([[1, 2]] * 4)
    with pytest.raises(NetworkError, match=r"expected \(4, 3\)"):
        net.infer(check_params=True)
    net.layers[0].thresholds = np.array([[1, 2, 3]] * 4)
    net.infer(check_params=True)


def test_inference_is_shared_until_the_network_changes():
    """Every caller of an unchanged network shares one inference; a new folding, a replaced
    or added layer or a new input spec infers again; parameters are checked on every call."""
    import dataclasses

    net = net_of(Conv("c", 8, 3, padding=1, pe=2, simd=3, act=UINT(2)), MaxPool("p"),
                 FC("f", 4, act=None, simd=8), TopK("t")).randomize(0)
    first = net.infer()
    again = net.infer(check_params=True)
    assert again == first and all(a is b for a, b in zip(again, first, strict=True))
    again.append(None)  # the list is the caller's
    assert len(net.infer()) == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        first[0].in_fold = 3  # shared, hence immutable
    net["c"].pe = 4  # a new folding: the pool inherits it
    assert net.infer()[0].out_fold == 4 and net.infer()[1].in_fold == 4
    net.layers[2] = dataclasses.replace(net["f"], simd=16)
    infos = net.infer()
    assert infos[2].layer is net.layers[2] and infos[2].in_fold == 16
    net.layers[2].simd = 3  # 3 does not divide MW = 128
    with pytest.raises(NetworkError, match="layer f: MW=128 is not a multiple of SIMD=3"):
        net.infer()
    net.layers[2].simd = 8
    net.input_shape = (3, 4, 4)
    assert net.infer()[2].mw == 8 * 2 * 2
    net.input_shape = (3, 8, 8)
    net.infer(check_params=True)
    net["f"].weights = net["f"].weights[:, :-1]  # parameters: checked on every call
    net.infer()
    with pytest.raises(NetworkError, match="layer f: weights have shape"):
        net.infer(check_params=True)
    twin = net.copy()  # a copy infers its own layers
    assert [i.layer for i in twin.infer()] == twin.layers
    assert all(a is b for a, b in zip((i.layer for i in twin.infer()), twin.layers, strict=True))


def test_shapes_and_accumulator_bits():
    net = net_of(Conv("c", 16, 3, stride=2, padding=1, weight_dtype=INT(2), act=UINT(2),
                      simd=3, pe=4),
                 MaxPool("p", 2), FC("f", 10, act=None, simd=8), TopK("t", 3))
    infos = net.infer()
    assert [i.out_shape for i in infos] == [(16, 4, 4), (16, 2, 2), (10, 1, 1), (3, 1, 1)]
    c = infos[0]
    assert (c.mw, c.mh, c.vectors) == (27, 16, 16)
    # INT2 × UINT8 over 27 products: -2·255·27 .. 1·255·27 → 15 bits signed
    assert (c.acc_min, c.acc_max, c.acc_bits) == (-13770, 6885, 15)
    f = infos[2]
    assert f.in_dtype == UINT(2) and f.out_dtype == INT(f.acc_bits)
    assert (f.acc_min, f.acc_max) == (-3 * 64, 3 * 64)
    assert infos[3].out_dtype == UINT(4)
    assert infos[1].in_fold == 4  # pool takes the conv's PE by default


def test_cnv_w1a1_cycles_by_hand():
    net = load_network(NETWORKS / "cnv_w1a1.py", seed=None)
    cost = network_cost(net, 100.0)
    by = {c.name: c.cycles for c in cost.layers}
    hand = {
        "conv0": (64 // 16) * (27 // 3) * 30 * 30,  # 32,400
        "conv1": (64 // 32) * (576 // 32) * 28 * 28,  # 28,224
        "pool0": 28 * 28 * 64 // 32,
        "conv2": (128 // 16) * (576 // 32) * 12 * 12,  # 20,736
        "conv3": (128 // 16) * (1152 // 32) * 10 * 10,  # 28,800
        "pool1": 10 * 10 * 128 // 16,
        "conv4": (256 // 4) * (1152 // 32) * 3 * 3,  # 20,736
        "conv5": (256 // 1) * (2304 // 32) * 1,  # 18,432
        "fc0": 512 * (256 // 4),  # 32,768
        "fc1": 512 * (512 // 8),  # 32,768
        "fc2": (10 // 5) * 512,  # 1,024
        "top": 10 // 5,
    }
    assert by == hand
    assert cost.cycles_per_frame == 32768
    assert cost.bottleneck.name == "fc0"
    assert cost.fps == pytest.approx(100e6 / 32768)
    assert cost.weight_bits == sum(i.mw * i.mh for i in net.infer() if i.is_mvtu)


def test_save_load_roundtrip(tmp_path):
    net = net_of(Conv("c", 4, 3, padding=1, weight_dtype=INT(2), act=UINT(2), simd=3),
                 MaxPool("p", 2), FC("f", 10, act=None), TopK("t")).randomize(5)
    net.labels = [str(i) for i in range(10)]
    path = save(net, tmp_path / "n.npz")
    back = load(path)
    assert back.name == net.name and back.labels == net.labels
    assert [type(lay) for lay in back.layers] == [type(lay) for lay in net.layers]
    x = np.random.default_rng(1).integers(0, 256, size=(3, 3, 8, 8))
    assert np.array_equal(golden.forward(back, x).output, golden.forward(net, x).output)
    assert back.layers[0].act == UINT(2) and back.layers[0].weight_dtype == INT(2)


def test_load_network_params_file(tmp_path):
    src = (NETWORKS / "tfc_w1a1.py").read_text()
    (tmp_path / "bnn_pynq.py").write_text((NETWORKS / "bnn_pynq.py").read_text())
    net = load_network(NETWORKS / "tfc_w1a1.py", seed=7)
    save(net, tmp_path / "trained.npz")
    (tmp_path / "mine.py").write_text(src + '\nPARAMS = "trained.npz"\n')
    again = load_network(tmp_path / "mine.py")
    for a, b in zip(net.layers, again.layers, strict=True):
        if isinstance(a, FC):
            assert np.array_equal(a.weights, b.weights)
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(NetworkError, match="defines no `network`"):
        load_network(tmp_path / "none.py")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_info_prints_every_example(path, capsys):
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    net = load_network(path, seed=None)
    for lay in net.layers:
        assert lay.name in out
    assert "bottleneck:" in out and "frames/s" in out
    assert main(["info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cycles_per_frame"] == max(lay["cycles"] for lay in data["layers"])


def test_cli_reports_errors(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.py")]) == 1
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("from lowbit_hdl import *\nnetwork = Network('b', (64, 3, 3), "
                   "[FC('fc3', 10, simd=40)])\n")
    assert main(["info", str(bad)]) == 1
    assert "layer fc3: MW=576 is not a multiple of SIMD=40" in capsys.readouterr().err


def test_dtype_encodings():
    v = np.array([-2, -1, 0, 1])
    assert INT(2).decode(INT(2).encode(v)).tolist() == v.tolist()
    assert BIPOLAR.encode(np.array([-1, 1])).tolist() == [0, 1]
    assert UINT(3).max == 7 and INT(3).min == -4


def test_topology_guide_example_is_valid():
    text = (NETWORKS.parent / "docs" / "topologies.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own documentation
    infos = scope["network"].infer()
    assert infos[-1].out_shape == (1, 1, 1)


@pytest.mark.parametrize("padding,shape,pads,out", [
    ("same", (4, 13, 13), (0, 1, 0, 1), (4, 13, 13)),  # Tiny-YOLO's sixth pool (k2 s1)
    (0, (4, 13, 13), (0, 0, 0, 0), (4, 12, 12)),
    ("valid", (4, 13, 13), (0, 0, 0, 0), (4, 12, 12)),
    (1, (4, 5, 7), (1, 1, 1, 1), (4, 6, 8)),
    ((1, 0, 0, 1), (4, 5, 7), (1, 0, 0, 1), (4, 5, 7)),
    ([0, 1, 1, 0], (4, 5, 7), (0, 1, 1, 0), None),  # a list is not a padding (JSON: netfile)
])
def test_maxpool_padding_shapes(padding, shape, pads, out):
    net = Network("t", shape, [MaxPool("p", 2, 1, padding=padding)], UINT(2))
    if out is None:
        with pytest.raises(NetworkError, match="layer p: padding=.* must be an int"):
            net.infer()
        return
    info = net.infer()[0]
    assert info.pads == pads and info.out_shape == out and info.pad_value == 0


@pytest.mark.parametrize("n,k,s", [(54, 3, 2), (27, 3, 2), (13, 2, 1), (416, 2, 2),
                                   (7, 3, 1), (8, 4, 3), (1, 3, 2)])
def test_same_padding_is_tensorflows(n, k, s):
    """ceil(n/s) outputs; total padding (out−1)·s + k − n; the smaller half before."""
    from lowbit_hdl.ir import pool_out_size, same_padding

    before, after = same_padding(n, k, s)
    out = -(-n // s)
    assert pool_out_size(n, k, s, before, after) == out
    assert before + after == max(0, (out - 1) * s + k - n) and after - before in (0, 1)


def test_same_pool_sizes_of_the_seed_networks():
    """DoReFa AlexNet: 3×3/2 "same" pools take 54 → 27 and 27 → 14, the valid one 14 → 6."""
    net = Network("t", (2, 54, 54), [MaxPool("p0", 3, 2, padding="same"),
                                     MaxPool("p1", 3, 2, padding="same"),
                                     MaxPool("p2", 3, 2)], BIPOLAR)
    infos = net.infer()
    assert [i.out_shape[1:] for i in infos] == [(27, 27), (14, 14), (6, 6)]
    assert infos[0].pads == (0, 1, 0, 1) and infos[1].pads == (1, 1, 1, 1)
    assert infos[0].pad_value == -1  # BIPOLAR's minimum: padding never wins


@pytest.mark.parametrize("padding,message", [
    ("full", r"layer p: padding='full' must be one of \('valid', 'same'\)"),
    ((0, 1), r"layer p: padding=\(0, 1\) must be an int ≥ 0, 'valid', 'same' or a tuple"),
    (-1, r"layer p: padding=-1 must be ≥ 0"),
    (2, r"layer p: padding \(top, bottom, left, right\)=\(2, 2, 2, 2\): each side must be "
        r"below the kernel 2"),
    ((0, 0, 0, 3), "each side must be below the kernel 2"),
])
def test_maxpool_padding_errors(padding, message):
    net = Network("t", (1, 4, 4), [MaxPool("p", 2, padding=padding)], UINT(2))
    with pytest.raises(NetworkError, match=message):
        net.infer()


def test_maxpool_padding_type_error():
    from lowbit_hdl.errors import NetworkTypeError

    for bad in (1.5, (0, 1.0, 0, 0), None):
        with pytest.raises(NetworkTypeError, match="layer p: padding=.* must be an int, a str"):
            Network("t", (1, 4, 4), [MaxPool("p", 2, padding=bad)], UINT(2)).infer()


def test_padded_pool_roundtrip_and_golden(tmp_path):
    """Padding survives save/load (a tuple becomes a JSON list and back) and the golden model
    pads with the input type's minimum."""
    net = Network("t", (2, 5, 5), [
        Conv("c", 4, 3, padding=1, weight_dtype=BIPOLAR, act=BIPOLAR, simd=2),
        MaxPool("p0", 2, 1, padding="same"),
        MaxPool("p1", 3, 2, padding=(1, 0, 2, 1)),
        FC("f", 3, act=None)], BIPOLAR).randomize(3)
    back = load(save(net, tmp_path / "n.npz"))
    assert [lay.padding for lay in back.layers[1:3]] == ["same", (1, 0, 2, 1)]
    x = np.random.default_rng(0).choice([-1, 1], size=(4, 2, 5, 5))
    res = golden.forward(back, x)
    assert res.intermediates["p0"].shape == (4, 4, 5, 5)
    assert res.intermediates["p1"].shape == (4, 4, 2, 3)
    assert set(np.unique(res.intermediates["p1"])) <= {-1, 1}  # never a padding value
    c = res.intermediates["c"]  # NCHW: the max over each window's real pixels
    assert np.array_equal(res.intermediates["p0"][:, :, 4, 4], c[:, :, 4, 4])
    assert np.array_equal(res.intermediates["p0"][:, :, 0, 4], c[:, :, 0:2, 4].max(axis=2))
    p0 = res.intermediates["p0"]  # p1's first window: rows −1..1, columns −2..0
    assert np.array_equal(res.intermediates["p1"][:, :, 0, 0], p0[:, :, 0:2, 0:1].max(axis=(2, 3)))
    assert np.array_equal(golden.forward(net, x).output, res.output)
