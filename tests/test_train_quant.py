"""Quantizers of lowbit_hdl.train: exact forward values, STE gradients, unbiased gradient
quantization."""

# ruff: noqa: E402  (imports follow pytest.importorskip)

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit_hdl import BIPOLAR, INT, UINT
from lowbit_hdl.train.quant import (
    ActQuant,
    GradQuant,
    WeightQuant,
    bipolar_act,
    level_scale,
    quantize_grad,
    quantize_weight,
    uint_act,
    uint_act_levels,
    weight_levels,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


def test_bipolar_weights_values_and_identity_ste():
    w = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5])
    lv, s = weight_levels(w, BIPOLAR)
    assert lv.tolist() == [-1, -1, 1, 1, 1] and float(s) == 1.0
    assert quantize_weight(w, BIPOLAR).tolist() == [-1, -1, 1, 1, 1]
    scaled = quantize_weight(w, BIPOLAR, scale=True)
    assert torch.allclose(scaled, torch.tensor([-1.0, -1, 1, 1, 1]) * 0.86)
    assert _grad(lambda t: quantize_weight(t, BIPOLAR) * torch.arange(5.0), w).tolist() == \
        [0, 1, 2, 3, 4]


def test_kbit_uniform_weights_narrow_range():
    w = torch.tensor([-1.2, -0.5, 0.1, 0.5, 0.9])
    lv, s = weight_levels(w, INT(3))  # m = 3, round half to even
    assert lv.tolist() == [-3, -2, 0, 2, 3] and float(s) == pytest.approx(1 / 3)
    assert torch.allclose(quantize_weight(w, INT(3)), lv / 3)
    # STE: identity inside [-1, 1] (round), clamp kills the gradient outside
    assert _grad(lambda t: quantize_weight(t, INT(3)), w).tolist() == [0, 1, 1, 1, 1]
    lv2, _ = weight_levels(torch.tensor([-0.7, -0.4, 0.0, 0.4, 0.6]), INT(2))  # ternary
    assert lv2.tolist() == [-1, 0, 0, 0, 1]
    lvs, ss = weight_levels(torch.tensor([-2.0, 1.0, 0.5, 4.0]), INT(4), scale=True)
    assert lvs.tolist() == [-4, 2, 1, 7] and float(ss) == pytest.approx(4 / 7)


def test_dorefa_weights():
    w = torch.tensor([-3.0, -0.2, 0.0, 0.4, 1.0])
    lv, s = weight_levels(w, INT(4), mode="dorefa")
    t = torch.tanh(w) / torch.tanh(w).abs().max()
    assert lv.tolist() == torch.round(t * 7).tolist()
    assert lv.min() == -7 and float(s) == pytest.approx(1 / 7)
    g = _grad(lambda x: quantize_weight(x, INT(4), mode="dorefa"), w)
    assert torch.all(torch.isfinite(g)) and g.abs().sum() > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=40),
       st.sampled_from([BIPOLAR, INT(2), INT(3), INT(5), INT(8)]),
       st.sampled_from(["uniform", "dorefa"]), st.booleans())
def test_weight_levels_in_narrow_range_and_monotone(vals, dtype, mode, scale):
    w = torch.tensor(vals, dtype=torch.float64)
    q = WeightQuant(dtype, mode, scale)
    lv, s = q.integer(w)
    m = 1 if dtype.is_bipolar else 2 ** (dtype.bits - 1) - 1
    assert torch.all(lv == torch.round(lv)) and lv.abs().max() <= m and s > 0
    if dtype.is_bipolar:
        assert set(lv.tolist()) <= {-1.0, 1.0}
    order = torch.argsort(w)
    assert torch.all(torch.diff(lv[order]) >= 0)  # monotone in the latent weight
    assert torch.allclose(q(w), lv * s)


def test_uint_activation_values_and_ste():
    x = torch.tensor([-0.5, 0.0, 0.1, 0.2, 0.5, 0.84, 1.0, 1.7])
    assert uint_act_levels(x, 2).tolist() == [0, 0, 0, 1, 2, 3, 3, 3]
    assert torch.allclose(uint_act(x, 2), torch.tensor([0, 0, 0, 1, 2, 3, 3, 3]) / 3)
    assert _grad(lambda t: uint_act_levels(t, 2), x).tolist() == [0, 3, 3, 3, 3, 3, 3, 0]
    assert _grad(lambda t: uint_act(t, 2), x).tolist() == pytest.approx([0, 1, 1, 1, 1, 1, 1, 0])
    a = ActQuant(UINT(3))
    assert a(torch.tensor([0.5])).item() == 4 and a.scale == pytest.approx(1 / 7)
    assert a.target_levels() == list(range(1, 8))


def test_bipolar_activation_values_and_hardtanh_ste():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    assert bipolar_act(x).tolist() == [-1, -1, -1, 1, 1, 1, 1]
    assert _grad(bipolar_act, x).tolist() == [0, 1, 1, 1, 1, 1, 0]
    assert ActQuant(BIPOLAR).target_levels() == [1]


def test_bipolar_activation_approxsign_gradient():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0])
    assert bipolar_act(x, "approxsign").tolist() == [-1, -1, -1, 1, 1, 1, 1]
    assert _grad(lambda v: bipolar_act(v, "approxsign"), x).tolist() == \
        [0, 0, 1, 2, 1.5, 0, 0]
    q = ActQuant(BIPOLAR, "approxsign")
    assert _grad(q, x).tolist() == [0, 0, 1, 2, 1.5, 0, 0]
    with pytest.raises(ValueError, match="activation gradient must be one of"):
        ActQuant(BIPOLAR, "tanh")


def test_input_level_scale():
    assert level_scale(UINT(8)) == 1 / 255 and level_scale(BIPOLAR) == 1.0
    assert level_scale(UINT(2)) == 1 / 3 and level_scale(INT(4)) == 1 / 8


def test_gradient_quantization_off_by_default_and_identity_forward():
    x = torch.randn(4, 6)
    g = torch.randn(4, 6)
    x1 = x.clone().requires_grad_(True)
    GradQuant()(x1).backward(g)
    assert torch.equal(x1.grad, g)
    x2 = x.clone().requires_grad_(True)
    y = GradQuant(4)(x2)
    assert torch.equal(y, x)
    y.backward(g)
    assert not torch.equal(x2.grad, g)


def test_gradient_quantization_grid_and_unbiased():
    torch.manual_seed(0)
    bits, n, samples = 2, 3, 4000
    g = torch.tensor([[0.1, -0.37, 0.5, 1.0, -1.0, 0.0, 0.05, -0.8],
                      [2.0, 0.3, -0.2, 0.0, 0.9, -1.5, 0.6, 0.01]])
    m = g.abs().amax(dim=1, keepdim=True)
    gs = g.repeat(samples, 1)  # each row is one sample: per-sample max as DoReFa
    x = torch.zeros_like(gs, requires_grad=True)
    quantize_grad(x, bits).backward(gs)
    q = x.grad.reshape(samples, 2, 8)
    # every value lies on the grid 2M·(k/n − 1/2), k = 0..n
    k = (q / (2 * m) + 0.5) * n
    assert torch.allclose(k, torch.round(k), atol=1e-5)
    assert k.min() >= 0 and k.max() <= n
    # unbiased: the mean over many draws converges to g (5 standard errors)
    sd = (2 * m / n) / 2 / samples ** 0.5
    assert torch.all((q.mean(0) - g).abs() <= 5 * sd)
    # the extremes are represented exactly
    assert torch.all(q[:, 0, 3] == 1.0) and torch.all(q[:, 0, 4] == -1.0)


def test_deterministic_rounding_would_be_biased():
    """Guard for the statistics above: rounding without noise misses g by far more."""
    g, m, n = 0.1, 1.0, 3
    t = (g / (2 * m) + 0.5) * n
    det = 2 * m * (round(t) / n - 0.5)
    sd = (2 * m / n) / 2 / 4000 ** 0.5
    assert abs(det - g) > 5 * sd


def test_invalid_quantizer_types():
    with pytest.raises(ValueError):
        WeightQuant(UINT(2))
    with pytest.raises(ValueError):
        ActQuant(INT(4))
    with pytest.raises(ValueError):
        WeightQuant(INT(4), mode="log")
    with pytest.raises(ValueError):
        GradQuant(0)
