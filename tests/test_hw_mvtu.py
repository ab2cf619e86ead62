"""MVTU: co-simulation against the golden model on Verilator and Icarus (random weights,
thresholds, inputs; random stalls on both streams; exact cycle counts), and constructor
checks."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.golden import matvec, multithreshold
from lowbit_hdl.hw.mvtu import MVTU
from lowbit_hdl.ir import FC, Conv, MaxPool, Network
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT, DataType
from lowbit_hdl.sim.runner import available_simulators
from lowbit_hdl.sim.stream import pack
from sim.units import phase, simulate_units

SIMS = available_simulators()


def random_values(rng, dt: DataType, shape) -> np.ndarray:
    if dt.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(dt.min, dt.max + 1, size=shape)


def random_thresholds(rng, channels: int, act: DataType, acc: np.ndarray) -> np.ndarray:
    """Ascending thresholds spread over (and a little beyond) the observed accumulators;
    channel 0 gets thresholds far above and channel 1 far below any accumulator (clipping)."""
    n = 1 if act.is_bipolar else (1 << act.bits) - 1
    lo, hi = int(acc.min()) - 2, int(acc.max()) + 2
    t = rng.integers(lo, hi + 1, size=(channels, n))
    t[0, :] = 10**6 + np.arange(n)
    if channels > 1:
        t[1, :] = -(10**6) + np.arange(n)
    return np.sort(t, axis=1)


def stream_words(unit: MVTU, x: np.ndarray) -> list[int]:
    enc = unit.in_dtype.encode(x).astype(np.int64)
    return [pack(v[s * unit.simd:(s + 1) * unit.simd], unit.in_bits)
            for v in enc for s in range(unit.sf)]


def output_words(unit: MVTU, y: np.ndarray) -> list[int]:
    enc = unit.out_dtype.encode(y).astype(np.int64)
    return [pack(v[f * unit.pe:(f + 1) * unit.pe], unit.out_bits)
            for v in enc for f in range(unit.nf)]


# (name, MW, MH, PE, SIMD, weight dtype, input dtype, act[, ram_style])
CONFIGS = [
    ("bb_bip", 27, 10, 2, 9, BIPOLAR, BIPOLAR, BIPOLAR),
    ("bb_u2_simd1", 32, 8, 8, 1, BIPOLAR, BIPOLAR, UINT(2)),
    ("bb_raw_pe1", 27, 10, 1, 27, BIPOLAR, BIPOLAR, None),
    ("bb_raw_wide", 128, 4, 2, 64, BIPOLAR, BIPOLAR, None),
    ("bb_tiny", 6, 3, 1, 1, BIPOLAR, BIPOLAR, BIPOLAR),
    ("bu8_bip", 12, 6, 3, 4, BIPOLAR, UINT(8), BIPOLAR),
    ("bu8_raw", 20, 4, 4, 5, BIPOLAR, UINT(8), None),
    ("i2u2_u2", 18, 8, 4, 6, INT(2), UINT(2), UINT(2)),
    ("i8u8_raw", 27, 4, 4, 3, INT(8), UINT(8), None),
    ("i2i3_full", 10, 6, 6, 10, INT(2), INT(3), UINT(3)),
    # weights read a cycle early into a register (ram_style="block")
    ("bb_bip_block", 27, 10, 2, 9, BIPOLAR, BIPOLAR, BIPOLAR, "block"),
    ("i2u2_block", 18, 8, 4, 6, INT(2), UINT(2), UINT(2), "block"),
    # trees split into registered lane groups (latency 4): INT8 x UINT2 raw, BIPOLAR x UINT3
    ("i8u2_split", 64, 2, 1, 32, INT(8), UINT(2), None),
    ("bu3_split", 192, 4, 2, 96, BIPOLAR, UINT(3), UINT(3)),
]


def build_case(cfg, vectors: int):
    """A random MVTU for ``cfg`` and its phases: no stalls with the exact cycle count, then
    stall probability 0.3 on both streams; expected outputs from the golden model."""
    name, mw, mh, pe, simd, wdt, xdt, act, *style = cfg
    rng = np.random.default_rng(sum(map(ord, name)))
    w = random_values(rng, wdt, (mh, mw))
    x_sets = [random_values(rng, xdt, (vectors, mw)) for _ in range(2)]
    accs = [matvec(w, x, wdt, xdt) for x in x_sets]
    t = None
    y_sets = accs
    if act is not None:
        t = random_thresholds(rng, mh, act, np.concatenate(accs))
        y_sets = [multithreshold(a, t, act) for a in accs]
    unit = MVTU(mw, mh, pe, simd, wdt, xdt, w, t, act, *style)
    runs = [phase(stream_words(unit, x), output_words(unit, y), stall,
                  cycles=unit.cycles(len(x)) if stall == 0 else None)
            for x, y, stall in zip(x_sets, y_sets, (0.0, 0.3), strict=True)]
    return unit, runs


@pytest.mark.parametrize("sim", SIMS)
def test_mvtu_matches_golden(sim):
    """Every configuration in one build per simulator (Verilator builds are the slow part)."""
    vectors = 6 if sim == "verilator" else 4
    cases = {c[0]: build_case(c, vectors) for c in CONFIGS}
    for (u, _), c in zip(cases.values(), CONFIGS, strict=True):
        act, xdt = c[7], c[6]
        # element j of a beat in bits [j·bits, (j+1)·bits); INTk elements are signed
        out_elem = unsigned(act.bits) if act else signed(u.acc_bits)
        assert u.o.payload.shape() == ArrayLayout(out_elem, u.pe)
        in_elem = signed(xdt.bits) if xdt.kind == "int" else unsigned(xdt.bits)
        assert u.i.payload.shape() == ArrayLayout(in_elem, u.simd)
    simulate_units(cases, "mvtu_bundle", sim,
                   out_signed={c[0]: c[7] is None for c in CONFIGS})


def test_from_layer_fc_and_conv():
    net = Network("n", (4, 5, 5), [
        Conv("c1", 6, 3, weight_dtype=INT(2), act=UINT(2), pe=3, simd=2),
        FC("f1", 8, weight_dtype=BIPOLAR, act=None, pe=2, simd=18),
    ], input_dtype=UINT(2)).randomize(3)
    infos = net.infer(check_params=True)
    c = MVTU.from_layer(infos[0])
    assert (c.mw, c.mh, c.pe, c.simd, c.nf, c.sf) == (36, 6, 3, 2, 2, 18)
    assert c.acc_bits == infos[0].acc_bits and c.out_bits == 2
    np.testing.assert_array_equal(c.weights, infos[0].weight_matrix())
    f = MVTU.from_layer(infos[1])
    assert f.out_bits == infos[1].acc_bits and f.act is None
    with pytest.raises(ValueError, match="not an MVTU layer"):
        MVTU.from_layer(Network("p", (2, 4, 4), [MaxPool("p")]).infer()[0])


def _w(mh, mw, v=1):
    return np.full((mh, mw), v)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(mw=576, simd=40), r"MW=576 is not a multiple of SIMD=40"),
    (dict(mh=10, pe=4), r"MH=10 is not a multiple of PE=4"),
    (dict(pe=0), r"PE=0 must be ≥ 1"),
    (dict(weight_dtype=UINT(2)), r"weight_dtype=UINT2 is not supported"),
    (dict(weights=np.full((4, 8), 2)), r"weights: values must be BIPOLAR"),
    (dict(weights=np.ones((8, 4))), r"weights have shape \(8, 4\), expected \(MH, MW\)"),
    (dict(act=INT(2), thresholds=np.zeros((4, 3), int)), r"act=INT2 is not supported"),
    (dict(act=UINT(9), thresholds=np.zeros((4, 511), int)), r"at most 8 activation bits"),
    (dict(act=UINT(2), thresholds=None), r"needs thresholds"),
    (dict(act=UINT(2), thresholds=np.zeros((4, 2), int)), r"expected \(4, 3\)"),
    (dict(act=UINT(2), thresholds=np.array([[3, 2, 5]] * 4)), r"must ascend"),
    (dict(act=None, thresholds=np.zeros((4, 1), int)), r"act=None .* thresholds were given"),
    (dict(ram_style="ultra"), r"ram_style='ultra' must be one of"),
])
def test_constructor_errors(kwargs, msg):
    args = dict(mw=8, mh=4, pe=2, simd=4, weight_dtype=BIPOLAR, in_dtype=BIPOLAR,
                weights=None, thresholds=np.zeros((4, 1), int), act=BIPOLAR)
    args.update(kwargs)
    if args["weights"] is None:
        args["weights"] = _w(args["mh"], args["mw"])
    with pytest.raises(ValueError, match=msg):
        MVTU(**args)


def test_widths_and_cycle_formula():
    u = MVTU(576, 64, 16, 64, BIPOLAR, BIPOLAR, _w(64, 576), None, None)
    assert (u.nf, u.sf, u.cycles_per_vector) == (4, 9, 36)
    assert u.acc_bits == 11 and u.out_bits == 11  # range ±576
    assert u.cycles(10) == 360 + MVTU.LATENCY == 360 + u.latency and u.tree_groups == 1
    u8 = MVTU(27, 16, 4, 3, INT(8), UINT(8), _w(16, 27), None, None)
    assert u8.acc_bits == 1 + (27 * 128 * 255).bit_length()


def test_split_trees_by_size():
    """A bit matrix of more than MAX_TREE_TERMS one-bit terms per PE is split into the fewest
    registered lane groups that keep each tree within it (one more cycle of latency); the
    XNOR-popcount, DSP products and narrower bit matrices are not."""
    from lowbit_hdl.hw.bitmatrix import MAX_TREE_TERMS
    from lowbit_hdl.runtime.accdomain import lane_products

    split = set()
    for cfg in CONFIGS:
        u = build_case(cfg, 1)[0]
        g = u.tree_groups
        assert u.latency == MVTU.LATENCY + (g > 1)
        if u.mode != "bits":
            assert g == 1, cfg[0]
            continue
        per_lane = len(lane_products(u.in_dtype, u.weight_dtype)[0])
        widest = -(-u.simd // g)  # lanes of the widest group
        assert widest * per_lane <= MAX_TREE_TERMS or widest == 1, cfg[0]
        if g > 1:
            split.add(cfg[0])
            assert -(-u.simd // (g - 1)) * per_lane > MAX_TREE_TERMS, cfg[0]
            assert u.tree_delay(g) < u.tree_delay(1), cfg[0]
    assert split == {"i8u2_split", "bu3_split"}


@pytest.mark.parametrize("kwargs, msg", [
    (dict(mw=8.0), r"MW=8.0 must be an int"),
    (dict(pe=True), r"PE=True must be an int"),
    (dict(weight_dtype="BIPOLAR"), r"weight_dtype='BIPOLAR' must be a lowbit_hdl DataType"),
    (dict(in_dtype=1), r"in_dtype=1 must be a lowbit_hdl DataType"),
    (dict(act="BIPOLAR"), r"act='BIPOLAR' must be a lowbit_hdl DataType"),
    (dict(ram_style=None), r"ram_style=None must be a str"),
])
def test_constructor_type_errors(kwargs, msg):
    args = dict(mw=8, mh=4, pe=2, simd=4, weight_dtype=BIPOLAR, in_dtype=BIPOLAR,
                weights=_w(4, 8), thresholds=np.zeros((4, 1), int), act=BIPOLAR)
    args.update(kwargs)
    with pytest.raises(TypeError, match=msg):
        MVTU(**args)
