"""Export of trained torch models to integer networks: thresholds reproduce the eval-mode
activation for every accumulator, and the exported network equals the torch eval model
layer by layer (golden.forward intermediates), including negative BatchNorm scales."""

# ruff: noqa: E402  (imports follow pytest.importorskip)

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lowbit_hdl import (
    BIPOLAR,
    FC,
    INT,
    UINT,
    Conv,
    MaxPool,
    Network,
    NetworkError,
    TopK,
    golden,
    netfile,
)
from lowbit_hdl.train.exporter import (
    compare_with_golden,
    export,
    export_layer,
    integer_thresholds,
)
from lowbit_hdl.train.model import affine_levels, build_model
from lowbit_hdl.train.quant import ActQuant

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("act", [BIPOLAR, UINT(1), UINT(2), UINT(4)])
def test_thresholds_reproduce_activation_on_whole_range(act):
    rng = np.random.default_rng(1)
    c, lo, hi = 24, -400, 350
    a = torch.tensor(rng.normal(0, 0.02, c))
    a[0], a[1], a[2] = 0.0, -0.013, 1e-9  # constant, negative, tiny slope
    b = torch.tensor(rng.normal(0.3, 1.0, c))
    b[3], a[3] = 5.0, 0.001  # saturated high over the whole range
    b[4], a[4] = -5.0, 0.001  # never reaches level 1
    q = ActQuant(act)
    thr, sign = integer_thresholds(a, b, q, lo, hi)
    assert thr.shape == (c, len(q.target_levels()))
    assert np.all(np.diff(thr, axis=1) >= 0)
    assert thr.min() >= lo and thr.max() <= hi + 1
    assert list(sign[:3]) == [1, -1, 1]
    # every hardware accumulator v in [lo, hi]; the torch accumulator is sign·v
    v = np.arange(lo, hi + 1, dtype=np.int64)[:, None].repeat(c, axis=1)
    acc = torch.tensor(v * sign[None, :], dtype=torch.float64)
    want = affine_levels(acc, a[None, :], b[None, :], q).numpy().astype(np.int64)
    np.testing.assert_array_equal(golden.multithreshold(v, thr, act), want)
    assert np.all(thr[3] == lo) and np.all(thr[4] == hi + 1)


def _spread_stats(model, x, momentum_one=True):
    """Set BatchNorm running statistics from one batch so activations are well spread."""
    model.train()
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.momentum = 1.0
    with torch.no_grad():
        model(x)
    model.eval()


def _mixed_net():
    return Network("mixed", (3, 10, 10), [
        Conv("c0", 12, 3, padding=1, weight_dtype=BIPOLAR, act=BIPOLAR),  # pad 0 (UINT8)
        Conv("c1", 8, 3, padding=1, weight_dtype=BIPOLAR, act=UINT(2)),  # pad -1 (bipolar)
        MaxPool("p0", 2),
        Conv("c2", 8, 3, padding=1, stride=1, weight_dtype=INT(3), act=UINT(3)),
        Conv("c3", 6, 2, stride=2, weight_dtype=INT(2), act=BIPOLAR),
        Conv("c4", 6, 2, padding=1, pad_value=1, weight_dtype=BIPOLAR, act=UINT(2)),
        FC("f0", 20, weight_dtype=INT(4), act=BIPOLAR),  # HWC flatten of 6×3×3
        FC("f1", 7, weight_dtype=BIPOLAR, act=None),
        TopK("top", k=2),
    ])


@pytest.mark.parametrize("mode,scale", [("uniform", False), ("dorefa", False),
                                        ("uniform", True)])
def test_export_matches_golden_layer_by_layer(mode, scale):
    torch.manual_seed(0)
    net = _mixed_net()
    model = build_model(net, weight_mode=mode, weight_scale=scale)
    x = torch.randint(0, 256, (96, 3, 10, 10), dtype=torch.uint8)
    with torch.no_grad():
        for mod in model.mvtu.values():
            mod.weight.uniform_(-1, 1)
            if mod.act is not None:  # random affine incl. negative scales
                mod.norm.weight.copy_(torch.randn(mod.out_channels))
                mod.norm.bias.copy_(torch.randn(mod.out_channels) * 0.5)
    _spread_stats(model, x)
    int_net = export(model)
    mism = compare_with_golden(model, int_net, x.numpy())
    assert set(mism) == {lay.name for lay in net.layers}
    assert all(v == 0 for v in mism.values()), mism
    inter = model.intermediates(x)
    # activations are not degenerate: the test exercises several levels per layer
    assert len(np.unique(inter["c1"])) == 4 and len(np.unique(inter["c2"])) >= 5
    assert set(np.unique(inter["c0"])) == {-1, 1}
    # torch decisions == golden top-1 on every image
    gold = golden.forward(int_net, x.numpy()).output[:, :, 0, 0]
    np.testing.assert_array_equal(model.predict(x).numpy(), gold[:, 0])
    # saved file gives the same network
    assert golden.forward(int_net, x.numpy()).intermediates.keys() == inter.keys()


def test_negative_bn_scale_flips_channel_weights(tmp_path):
    torch.manual_seed(3)
    net = Network("neg", (1, 6, 6), [
        Conv("c0", 6, 3, weight_dtype=INT(3), act=UINT(2)),
        FC("f0", 8, weight_dtype=BIPOLAR, act=BIPOLAR),
        FC("f1", 4, weight_dtype=BIPOLAR, act=None),
    ])
    model = build_model(net)
    x = torch.randint(0, 256, (200, 1, 6, 6), dtype=torch.uint8)
    with torch.no_grad():
        model.mvtu["c0"].weight.uniform_(-1, 1)
        model.mvtu["c0"].norm.weight.copy_(torch.tensor([1.0, -1.0, 0.7, -0.3, 2.0, -2.0]))
        model.mvtu["f0"].norm.weight.copy_(torch.tensor([-1.0, 1, -1, 1, -1, 1, -1, 1]))
        model.mvtu["c0"].norm.bias.fill_(0.5)
    _spread_stats(model, x)
    w_int = model.mvtu["c0"].integer_weights().numpy().astype(np.int64)
    w_exp, thr = export_layer(model.mvtu["c0"])
    flip = np.array([1, -1, 1, -1, 1, -1])
    np.testing.assert_array_equal(w_exp, w_int * flip[:, None, None, None])
    assert thr.shape == (6, 3) and np.all(np.diff(thr, axis=1) >= 0)
    # without flipping the negative channels are decreasing in acc: thresholds cannot work
    out = model.intermediates(x)
    assert len(np.unique(out["c0"][:, 1])) > 1
    int_net = export(model)
    path = netfile.save(int_net, tmp_path / "neg.npz")
    loaded = netfile.load(path)
    assert all(v == 0 for v in compare_with_golden(model, loaded, x.numpy()).values())
    np.testing.assert_array_equal(
        golden.forward(loaded, x.numpy()).intermediates["c0"], out["c0"])


def test_bipolar_input_and_large_accumulators_use_exact_paths():
    torch.manual_seed(5)
    net = Network("big", (2, 4, 4), [
        Conv("c0", 4, 3, padding=1, weight_dtype=BIPOLAR, act=UINT(8)),  # bipolar pad -1
        FC("f0", 3, weight_dtype=INT(8), act=None),
    ], input_dtype=BIPOLAR)
    model = build_model(net)
    assert model.mvtu["c0"].info.pad_value == -1
    x = torch.where(torch.rand(64, 2, 4, 4) < 0.5, -1, 1).float()
    with torch.no_grad():
        model.mvtu["f0"].weight.uniform_(-1, 1)
    _spread_stats(model, x)
    int_net = export(model)
    assert all(v == 0 for v in compare_with_golden(model, int_net, x.numpy()).values())
    wide = Network("wide", (1, 1, 300), [FC("f0", 2, weight_dtype=INT(8), act=None)])
    m2 = build_model(wide)
    assert m2.mvtu["f0"].eval_dtype == torch.float64  # 300·127·255 ≥ 2**23
    xw = torch.full((2, 1, 1, 300), 255, dtype=torch.uint8)
    with torch.no_grad():
        m2.mvtu["f0"].weight.fill_(1.0)
    m2.eval()
    assert m2.intermediates(xw)["f0"][0, :, 0, 0].tolist() == [300 * 127 * 255] * 2


def test_eval_path_stays_exact_inside_bf16_autocast():
    """An enclosing autocast must not reach the exact float32 accumulators: 101·127·255
    is not a bfloat16 number."""
    net = Network("mid", (1, 1, 101), [FC("f0", 2, weight_dtype=INT(8), act=None)])
    m = build_model(net)
    assert m.mvtu["f0"].eval_dtype == torch.float32
    with torch.no_grad():
        m.mvtu["f0"].weight.fill_(1.0)
    m.eval()
    x = torch.full((2, 1, 1, 101), 255, dtype=torch.uint8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = m.intermediates(x)["f0"][0, :, 0, 0].tolist()
    assert got == [101 * 127 * 255] * 2


def test_eval_forward_is_the_integer_path():
    torch.manual_seed(2)
    net = Network("ev", (1, 5, 5), [FC("f0", 16, act=UINT(2)), FC("f1", 3, act=None)])
    model = build_model(net)
    x = torch.randint(0, 256, (50, 1, 5, 5), dtype=torch.uint8)
    _spread_stats(model, x)
    int_net = export(model)
    acc = golden.forward(int_net, x.numpy()).output[:, :, 0, 0]
    scores = model(x)  # eval mode
    factor = model.mvtu["f1"].score_factor()
    assert factor > 0
    np.testing.assert_allclose(scores.numpy(), acc * factor, rtol=1e-6)
    # the float training path gives (nearly) the same scores with the same BN statistics
    model.train()
    model.mvtu["f0"].norm.eval()
    model.mvtu["f1"].norm.eval()
    with torch.no_grad():
        ftrain = model(x)
    assert (ftrain.argmax(1) == scores.argmax(1)).float().mean() > 0.9


def test_build_model_rejects_unsupported_topologies():
    with pytest.raises(NetworkError, match="act=None"):
        build_model(Network("n", (1, 4, 4), [FC("f0", 4, act=BIPOLAR)]))
    with pytest.raises(NetworkError, match="no Conv/FC"):
        build_model(Network("n", (1, 4, 4), [MaxPool("p0", 2)]))


@pytest.mark.parametrize("init, alive", [("auto", True), ("unit", True), ("fanin", False)])
def test_fixed_range_int_weights_start_alive(init, alive):
    """INT2 weights on the fixed [-1, 1] grid: a fan-in-sized init rounds every latent weight
    to level 0 (a dead network, seen on CNV-W2A2); the default init spans the levels."""
    net = Network("w2", (1, 8, 8), [FC("f0", 32, weight_dtype=INT(2), act=UINT(2)),
                                    FC("f1", 10, weight_dtype=INT(2), act=None)], UINT(8))
    torch.manual_seed(0)
    model = build_model(net, weight_init=init)
    for m in model.mvtu.values():
        lv = m.integer_weights()
        assert bool((lv != 0).any()) == alive
        if alive:
            assert set(lv.unique().tolist()) == {-1.0, 0.0, 1.0}
    with pytest.raises(ValueError, match="weight init"):
        build_model(net, weight_init="glorot")


def test_same_padded_pools_match_golden():
    """The torch model pads max-pools like the golden model (the input type's minimum never
    wins): "same" 2×2 stride 1 (Tiny-YOLO) after BIPOLAR and UINT activations, "same" 3×3
    stride 2 (DoReFa AlexNet) and an explicit asymmetric padding."""
    torch.manual_seed(7)
    net = Network("pads", (3, 9, 9), [
        Conv("c0", 8, 3, padding=1, weight_dtype=INT(4), act=BIPOLAR),
        MaxPool("p0", 2, 1, padding="same"),  # BIPOLAR: pads with −1
        Conv("c1", 8, 3, padding=1, weight_dtype=BIPOLAR, act=UINT(3)),
        MaxPool("p1", 3, 2, padding="same"),  # 9 → 5, pads (1, 1, 1, 1)
        MaxPool("p2", 2, 1, padding="same"),  # UINT: pads with 0; 5 → 5, pads (0, 1, 0, 1)
        MaxPool("p3", 3, 2, padding=(2, 0, 0, 1)),
        FC("f", 5, weight_dtype=BIPOLAR, act=None),
    ])
    infos = {i.name: i for i in net.infer()}
    assert infos["p1"].out_shape == (8, 5, 5) and infos["p2"].pads == (0, 1, 0, 1)
    model = build_model(net)
    x = torch.randint(0, 256, (64, 3, 9, 9), dtype=torch.uint8)
    with torch.no_grad():
        for mod in model.mvtu.values():
            mod.weight.uniform_(-1, 1)
    _spread_stats(model, x)
    int_net = export(model)
    mism = compare_with_golden(model, int_net, x.numpy())
    assert set(mism) == {lay.name for lay in net.layers}
    assert all(v == 0 for v in mism.values()), mism
    inter = model.intermediates(x)
    assert set(np.unique(inter["p0"])) == {-1, 1}  # not degenerate, never a pad value
    assert len(np.unique(inter["p2"])) >= 3
