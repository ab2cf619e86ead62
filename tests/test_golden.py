"""Golden model: hardware formulations agree with the mathematical ones, on random shapes."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK
from lowbit_hdl import golden as g

DTYPES_W = [BIPOLAR, INT(2), INT(3), INT(8)]
DTYPES_X = [BIPOLAR, UINT(1), UINT(2), UINT(3), UINT(8), INT(4)]


def rand(rng, dt, shape):
    if dt.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(dt.min, dt.max + 1, size=shape)


@settings(max_examples=60, deadline=None)
@given(mw=st.integers(1, 200), mh=st.integers(1, 20), n=st.integers(1, 6),
       wi=st.integers(0, 3), xi=st.integers(0, 5), seed=st.integers(0, 2**31))
def test_matvec_hardware_formulation_equals_matmul(mw, mh, n, wi, xi, seed):
    rng = np.random.default_rng(seed)
    wdt, xdt = DTYPES_W[wi], DTYPES_X[xi]
    w, x = rand(rng, wdt, (mh, mw)), rand(rng, xdt, (n, mw))
    ref = x @ w.T
    assert np.array_equal(g.matvec(w, x, wdt, xdt, exact=True), ref)
    assert np.array_equal(g.matvec(w, x, wdt, xdt, exact=False), ref)


@settings(max_examples=40, deadline=None)
@given(mw=st.integers(1, 300), seed=st.integers(0, 2**31))
def test_xnor_popcount_identity(mw, seed):
    rng = np.random.default_rng(seed)
    w, x = rand(rng, BIPOLAR, (3, mw)), rand(rng, BIPOLAR, (4, mw))
    wb, xb = BIPOLAR.encode(w), BIPOLAR.encode(x)
    pop = (~(xb[:, None, :] ^ wb[None, :, :]) & 1).sum(axis=-1).astype(np.int64)
    assert np.array_equal(2 * pop - mw, x @ w.T)
    assert np.array_equal(g.xnor_popcount_dot(wb, xb), x @ w.T)


def naive_conv(x, w, stride, padding, pad_value):
    """x NHWC, w (OC, IC, K, K): the textbook definition, one output at a time."""
    n, h, wd, c = x.shape
    oc, _, k, _ = w.shape
    xp = np.full((n, h + 2 * padding, wd + 2 * padding, c), pad_value, dtype=np.int64)
    xp[:, padding:padding + h, padding:padding + wd] = x
    oh, ow = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    out = np.zeros((n, oh, ow, oc), dtype=np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(oc):
                    acc = 0
                    for ci in range(c):
                        for u in range(k):
                            for v in range(k):
                                acc += w[o, ci, u, v] * xp[b, i * stride + u, j * stride + v, ci]
                    out[b, i, j, o] = acc
    return out


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 5), h=st.integers(1, 7), w=st.integers(1, 7), k=st.integers(1, 4),
       s=st.integers(1, 2), p=st.integers(0, 2), oc=st.integers(1, 4), xi=st.integers(0, 4),
       seed=st.integers(0, 2**31))
def test_conv_im2col_equals_definition(c, h, w, k, s, p, oc, xi, seed):
    assume(k <= h + 2 * p and k <= w + 2 * p)
    rng = np.random.default_rng(seed)
    xdt = DTYPES_X[xi]
    pad_value = -1 if xdt.is_bipolar else 0
    x = rand(rng, xdt, (2, h, w, c))
    wt = rand(rng, BIPOLAR, (oc, c, k, k))
    ref = naive_conv(x, wt, s, p, pad_value)
    for exact in (True, False):
        got = g.conv2d(x, wt, BIPOLAR, xdt, s, p, pad_value, exact)
        assert np.array_equal(got, ref)


def test_im2col_order_is_kh_kw_c():
    x = np.arange(2 * 3 * 3 * 4).reshape(2, 3, 3, 4)
    cols = g.im2col(x, 2)
    # first output pixel of image 0: (kh,kw) = (0,0),(0,1),(1,0),(1,1), channels innermost
    expect = np.concatenate([x[0, 0, 0], x[0, 0, 1], x[0, 1, 0], x[0, 1, 1]])
    assert np.array_equal(cols[0, 0], expect)
    assert cols.shape == (2, 4, 16)


def test_bipolar_padding_is_minus_one():
    x = np.ones((1, 2, 2, 1), dtype=np.int64)
    cols = g.im2col(x, 3, 1, 1, pad_value=-1)
    assert cols.shape == (1, 4, 9)
    assert sorted(cols[0, 0].tolist()) == [-1] * 5 + [1] * 4


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 8), nt=st.sampled_from([1, 3, 7]), seed=st.integers(0, 2**31))
def test_multithreshold_counts(c, nt, seed):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-50, 50, size=(5, c))
    t = np.sort(rng.integers(-50, 50, size=(c, nt)), axis=1)
    dt = BIPOLAR if nt == 1 else UINT({3: 2, 7: 3}[nt])
    got = g.multithreshold(acc, t, dt)
    for i in range(5):
        for ch in range(c):
            cnt = sum(int(acc[i, ch] >= tt) for tt in t[ch])
            assert got[i, ch] == (2 * cnt - 1 if dt.is_bipolar else cnt)


def test_multithreshold_rejects_wrong_count():
    with pytest.raises(ValueError, match="UINT2 output needs 3 thresholds"):
        g.multithreshold(np.zeros((1, 2)), np.zeros((2, 2), dtype=int), UINT(2))


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 4), k=st.integers(1, 3),
       s=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_maxpool_definition(h, w, c, k, s, seed):
    assume(k <= h and k <= w)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(2, h, w, c))
    got = g.maxpool(x, k, s)
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    assert got.shape == (2, oh, ow, c)
    for i in range(oh):
        for j in range(ow):
            assert np.array_equal(got[:, i, j], x[:, i * s:i * s + k, j * s:j * s + k].max((1, 2)))
    # bipolar max-pool is an OR of the bits
    xb = rng.choice(np.array([-1, 1]), size=(1, h, w, c))
    bits = BIPOLAR.encode(g.maxpool(xb, k, s))
    ref = np.zeros_like(bits)
    for i in range(oh):
        for j in range(ow):
            ref[:, i, j] = BIPOLAR.encode(xb[:, i * s:i * s + k, j * s:j * s + k]).max((1, 2))
    assert np.array_equal(bits, ref)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 3), k=st.integers(1, 4),
       s=st.integers(1, 3), same=st.booleans(), data=st.data())
def test_padded_maxpool_is_the_max_over_real_pixels(h, w, c, k, s, same, data):
    """Padding with the type's minimum = the max over each window's real pixels (naive
    reference), and "same" gives ⌈H/s⌉ × ⌈W/s⌉ outputs."""
    from lowbit_hdl.ir import pool_padding

    if same:
        pads = pool_padding("same", k, s, h, w)
    else:
        pads = tuple(data.draw(st.integers(0, k - 1)) for _ in range(4))
    assume(k <= h + pads[0] + pads[1] and k <= w + pads[2] + pads[3])
    dt = data.draw(st.sampled_from([BIPOLAR, UINT(1), UINT(3)]))
    x = dt.decode(np.random.default_rng(k + 7 * s).integers(0, 1 << dt.bits,
                                                            size=(2, h, w, c)))
    got = g.maxpool(x, k, s, pads, dt.min)
    pt, pb, pl, pr = pads
    oh, ow = (h + pt + pb - k) // s + 1, (w + pl + pr - k) // s + 1
    if same:
        assert (oh, ow) == (-(-h // s), -(-w // s))
    assert got.shape == (2, oh, ow, c)
    for i in range(oh):
        for j in range(ow):
            r0, r1 = max(i * s - pt, 0), min(i * s - pt + k, h)
            c0, c1 = max(j * s - pl, 0), min(j * s - pl + k, w)
            assert np.array_equal(got[:, i, j], x[:, r0:r1, c0:c1].max((1, 2)))


def test_topk_ties_lower_index_first():
    x = np.array([[3, 7, 7, 1, 7], [0, 0, 0, 0, 0]])
    assert g.topk(x, 3).tolist() == [[1, 2, 4], [0, 1, 2]]


def small_net(wbits=1, abits=1, xdt=UINT(8), pe=2, simd=3, stride=1, padding=0):
    w = BIPOLAR if wbits == 1 else INT(wbits)
    a = BIPOLAR if abits == 1 else UINT(abits)
    return Network("small", (3, 9, 9), [
        Conv("c0", 4, 3, stride=stride, padding=padding, weight_dtype=w, act=a, pe=pe,
             simd=simd),
        Conv("c1", 6, 3, padding=1, weight_dtype=w, act=a, pe=3, simd=4),
        MaxPool("p0", 2),
        FC("f0", 5, weight_dtype=w, act=None, pe=5, simd=1),
        TopK("t", 2),
    ], input_dtype=xdt)


@pytest.mark.parametrize("wbits,abits,stride,padding", [
    (1, 1, 1, 0), (1, 2, 2, 1), (2, 2, 1, 2), (1, 3, 2, 0)])
def test_forward_exact_equals_fast_and_layers(wbits, abits, stride, padding):
    net = small_net(wbits, abits, stride=stride, padding=padding).randomize(seed=3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(7, 3, 9, 9))
    a = g.forward(net, x, exact=True)
    b = g.forward(net, x, exact=False)
    for k in a.intermediates:
        assert np.array_equal(a.intermediates[k], b.intermediates[k]), k
    infos = net.infer()
    for info in infos:
        assert a.intermediates[info.name].shape[1:] == info.out_shape
        assert info.out_dtype.allowed(a.intermediates[info.name])
    # activations are spread (random thresholds are centred on the accumulator range)
    act = a.intermediates["c1"]
    assert len(np.unique(act)) > 1
    # top-k agrees with the raw scores of the last FC layer
    scores = a.intermediates["f0"].reshape(7, -1)
    assert np.array_equal(a.output.reshape(7, -1), g.topk(scores, 2))
    # keep=False (large test sets): the same output in small batches, no other layer kept
    c = g.forward(net, x, batch=3, keep=False)
    assert np.array_equal(c.output, a.output) and list(c.intermediates) == ["t"]
    # top1: the TopK's first index, or the argmax of raw scores without a TopK
    assert np.array_equal(g.top1(net, x), a.output.reshape(7, -1)[:, 0])
    raw = net.copy()
    raw.layers = raw.layers[:-1]
    assert np.array_equal(g.top1(raw, x), scores.argmax(1))


def test_forward_checks_input():
    net = small_net().randomize()
    with pytest.raises(ValueError, match=r"input must be N×\(3, 9, 9\)"):
        g.forward(net, np.zeros((1, 3, 8, 8), dtype=int))
    with pytest.raises(ValueError, match="values must be UINT8"):
        g.forward(net, np.full((1, 3, 9, 9), 256))


def test_fc_flattens_in_hwc_order():
    net = Network("f", (2, 1, 2), [FC("f", 1, weight_dtype=INT(12), act=None)], UINT(8))
    net.layers[0].weights = np.array([[1, 10, 100, 1000]])
    x = np.array([[[[1, 2]], [[3, 4]]]])  # NCHW: c0 = [1, 2], c1 = [3, 4]
    # HWC order: (h0,w0,c0)=1, (h0,w0,c1)=3, (h0,w1,c0)=2, (h0,w1,c1)=4
    assert g.forward(net, x).output.item() == 1 * 1 + 10 * 3 + 100 * 2 + 1000 * 4
