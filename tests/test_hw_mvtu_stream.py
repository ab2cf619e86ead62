"""MVTU with streamed weights (``weight_source="stream"``) and the tile loop order
(``order="tile"``): co-simulation against the golden model with random stalls on the input,
weight and output streams and exact cycle counts; the DDR weight format end to end (64-bit
words from :func:`lowbit_hdl.runtime.ddr.layer_weight_words` through the width converter
into the weight port); constructor checks."""

from __future__ import annotations

import numpy as np
import pytest

from lowbit_hdl.golden import matvec, multithreshold
from lowbit_hdl.hw.mvtu import MVTU
from lowbit_hdl.ir import FC, Network
from lowbit_hdl.runtime.ddr import frame_aligned, layer_weight_words, weight_beats
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.sim.runner import available_simulators
from lowbit_hdl.sim.stream import pack
from sim.units import WordFedMVTU, phase, simulate_units
from tests.test_hw_mvtu import random_thresholds, random_values

SIMS = available_simulators()

# (name, MW, MH, PE, SIMD, weight dtype, input dtype, act, weight source, order, P[,
#  ram_style])
CONFIGS = [
    ("s_bb_bip", 27, 10, 2, 9, BIPOLAR, BIPOLAR, BIPOLAR, "stream", "pixel", None),
    ("s_bu2_u2", 16, 8, 2, 4, BIPOLAR, UINT(2), UINT(2), "stream", "pixel", None),
    ("s_i8u2_raw", 12, 6, 3, 2, INT(8), UINT(2), None, "stream", "pixel", None),
    ("s_i8u8_raw", 12, 4, 2, 3, INT(8), UINT(8), None, "stream", "pixel", None),
    ("s_sf1", 8, 6, 2, 8, BIPOLAR, BIPOLAR, UINT(2), "stream", "pixel", None),
    ("t_bb_bip", 24, 8, 2, 8, BIPOLAR, BIPOLAR, BIPOLAR, "stream", "tile", 3),
    ("t_bu3_u2", 12, 6, 3, 4, BIPOLAR, UINT(3), UINT(2), "stream", "tile", 2),
    ("t_i8u2_bip", 12, 4, 2, 4, INT(8), UINT(2), BIPOLAR, "stream", "tile", 2),
    ("t_i8u8_raw", 9, 4, 2, 3, INT(8), UINT(8), None, "stream", "tile", 3),
    ("t_rom_bu2", 16, 8, 2, 4, BIPOLAR, UINT(2), UINT(2), "rom", "tile", 3),
    ("t_rom_sf1", 4, 6, 2, 4, INT(8), UINT(8), None, "rom", "tile", 2),
    ("t_rom_block", 16, 8, 2, 4, BIPOLAR, BIPOLAR, BIPOLAR, "rom", "tile", 3, "block"),
    ("t_nf1", 8, 2, 2, 2, BIPOLAR, BIPOLAR, BIPOLAR, "stream", "tile", 2),
]

# DDR chain: (name, MW, MH, PE, SIMD, weight dtype, input dtype, act); the weight beat is
# PE·SIMD·wbits bits: 16 (divides 64), 24 (does not divide 64), 64 (one word per beat)
CHAIN = [
    ("c_bb16", 32, 8, 2, 8, BIPOLAR, BIPOLAR, BIPOLAR),
    ("c_i8u2_24", 12, 8, 1, 3, INT(8), UINT(2), UINT(2)),
    ("c_i8u8_64", 16, 4, 2, 4, INT(8), UINT(8), None),
]


def _random_case(rng, mw, mh, wdt, xdt, act, vectors: int):
    """Weights, thresholds and two input/output sets of ``vectors`` vectors each."""
    w = random_values(rng, wdt, (mh, mw))
    xs = [random_values(rng, xdt, (vectors, mw)) for _ in range(2)]
    accs = [matvec(w, x, wdt, xdt) for x in xs]
    t, ys = None, accs
    if act is not None:
        t = random_thresholds(rng, mh, act, np.concatenate(accs))
        ys = [multithreshold(a, t, act) for a in accs]
    return w, t, xs, ys


def _in_words(unit: MVTU, x: np.ndarray) -> list[int]:
    enc = unit.in_dtype.encode(x).astype(np.int64)
    return [pack(v[s * unit.simd:(s + 1) * unit.simd], unit.in_bits) for v in enc
            for s in range(unit.sf)]


def _out_beat(unit: MVTU, y: np.ndarray, f: int) -> int:
    enc = unit.out_dtype.encode(y).astype(np.int64)
    return pack(enc[f * unit.pe:(f + 1) * unit.pe], unit.out_bits)


def stream_phase_words(unit: MVTU, w: np.ndarray, x: np.ndarray, y: np.ndarray):
    """(input words, weight beats or None, expected output words) for ``x`` (V vectors) in
    the unit's loop order; tile order takes ``V`` as whole frames of ``tile_vectors``."""
    beats = weight_beats(w, unit.weight_dtype, unit.pe, unit.simd)
    nf, sf = unit.nf, unit.sf
    if unit.order == "pixel":
        ins = _in_words(unit, x)
        outs = [_out_beat(unit, v, f) for v in y for f in range(nf)]
        wts = beats * len(x)
    else:
        p = unit.tile_vectors
        assert len(x) % p == 0
        ins, outs, wts = [], [], []
        for fr in range(len(x) // p):
            xf, yf = x[fr * p:(fr + 1) * p], y[fr * p:(fr + 1) * p]
            for f in range(nf):
                ins += _in_words(unit, xf)  # the frame replayed once per tile
                outs += [_out_beat(unit, v, f) for v in yf]
                wts += beats[f * sf:(f + 1) * sf] * p  # the tile replayed once per vector
    return ins, (wts if unit.weight_source == "stream" else None), outs


def build_case(cfg):
    name, mw, mh, pe, simd, wdt, xdt, act, source, order, p, *style = cfg
    rng = np.random.default_rng(sum(map(ord, name)))
    vectors = 2 * p if order == "tile" else 3
    w, t, xs, ys = _random_case(rng, mw, mh, wdt, xdt, act, vectors)
    unit = MVTU(mw, mh, pe, simd, wdt, xdt, w if source == "rom" else None, t, act,
                *style, weight_source=source, order=order, tile_vectors=p)
    runs = []
    for x, y, stall in zip(xs, ys, (0.0, 0.3), strict=True):
        ins, wts, outs = stream_phase_words(unit, w, x, y)
        runs.append(phase(ins, outs, stall, weights=wts,
                          cycles=unit.cycles(len(x)) if stall == 0 else None))
    if source == "stream":
        # a slow weight stream only (the step waits on the weight buffer)
        runs.append({**runs[0], "cycles": None, "stall_w": 0.7})
    return unit, runs


def build_chain_case(cfg):
    """A :class:`WordFedMVTU` and its phases: per vector (one FC frame) the DDR image of the
    weights, as 64-bit words, is read again."""
    name, mw, mh, pe, simd, wdt, xdt, act = cfg
    rng = np.random.default_rng(sum(map(ord, name)))
    w, t, xs, ys = _random_case(rng, mw, mh, wdt, xdt, act, 3)
    unit = MVTU(mw, mh, pe, simd, wdt, xdt, None, t, act, weight_source="stream")
    assert frame_aligned(unit.nf * unit.sf, pe * simd * wdt.bits)
    image = [int(v) for v in layer_weight_words(w, wdt, pe, simd)]
    runs = []
    for x, y, stall in zip(xs, ys, (0.0, 0.3), strict=True):
        ins, _, outs = stream_phase_words(unit, w, x, y)
        runs.append(phase(ins, outs, stall, weights=image * len(x),
                          cycles=unit.cycles(len(x)) if stall == 0 else None))
    return WordFedMVTU(unit), runs


@pytest.mark.parametrize("sim", SIMS[:1])
def test_stream_and_tile_match_golden(sim):
    """Every configuration (and the DDR chains) in one build; the first simulator only (the
    default pixel/ROM path runs on every simulator in test_hw_mvtu)."""
    cases = {c[0]: build_case(c) for c in CONFIGS}
    cases.update({c[0]: build_chain_case(c) for c in CHAIN})
    signed = {c[0]: c[7] is None for c in CONFIGS + CHAIN}
    simulate_units(cases, "mvtu_stream_bundle", sim, out_signed=signed)


def test_phase_words_tile_order():
    """The tile-order test words follow the loop ``for nf: for v: for sf``."""
    u = MVTU(4, 4, 2, 2, BIPOLAR, BIPOLAR, None, None, None, weight_source="stream",
             order="tile", tile_vectors=2)
    w = np.where(np.arange(16).reshape(4, 4) % 3, 1, -1)
    x = np.array([[1, 1, -1, -1], [-1, 1, -1, 1]])
    y = matvec(w, x, BIPOLAR, BIPOLAR)
    ins, wts, outs = stream_phase_words(u, w, x, y)
    xb = _in_words(u, x)
    assert ins == xb + xb
    beats = weight_beats(w, BIPOLAR, 2, 2)
    assert wts == beats[0:2] * 2 + beats[2:4] * 2
    assert outs == [_out_beat(u, y[0], 0), _out_beat(u, y[1], 0), _out_beat(u, y[0], 1),
                    _out_beat(u, y[1], 1)]


def test_ports_and_cycles():
    u = MVTU(64, 32, 4, 8, INT(2), UINT(2), None, np.zeros((32, 3), int), UINT(2),
             weight_source="stream", order="tile", tile_vectors=9)
    assert u.w.payload.shape().length == 32 and len(u.w.payload.as_value()) == 64
    assert u.cycles(9) == 8 * 8 * 9 + MVTU.LATENCY == u.cycles_per_vector * 9 + 3
    r = MVTU(8, 4, 2, 4, BIPOLAR, BIPOLAR, np.ones((4, 8), int), None, None)
    assert "w" not in r.signature.members and r.weight_source == "rom" and r.order == "pixel"


def test_from_layer_passes_placement():
    net = Network("n", (16, 1, 1), [FC("f", 4, weight_dtype=BIPOLAR, act=None, pe=2, simd=8)],
                  input_dtype=BIPOLAR).randomize(1)
    u = MVTU.from_layer(net.infer()[0], weight_source="stream")
    assert u.weight_source == "stream" and "w" in u.signature.members


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(weight_source="ddr"), ValueError, r"weight_source='ddr' must be one of"),
    (dict(order="row"), ValueError, r"order='row' must be one of"),
    (dict(order="tile"), ValueError, r"order='tile' needs tile_vectors"),
    (dict(order="tile", tile_vectors=0), ValueError, r"tile_vectors=0 must be ≥ 1"),
    (dict(order="tile", tile_vectors=2.0), TypeError, r"tile_vectors=2.0 must be an int"),
    (dict(tile_vectors=3), ValueError, r"tile_vectors=3 is only for order='tile'"),
    (dict(weights=None), ValueError, r"weight_source='rom' needs the weights"),
    (dict(weight_source=1), TypeError, r"weight_source=1 must be a str"),
])
def test_constructor_errors(kwargs, exc, msg):
    args = dict(mw=8, mh=4, pe=2, simd=4, weight_dtype=BIPOLAR, in_dtype=BIPOLAR,
                weights=np.ones((4, 8), int), thresholds=None, act=None)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        MVTU(**args)


def test_weight_port_handshake():
    """``w.ready`` is "buffer empty or step" and never follows ``w.valid``; ``i.ready`` waits
    for a buffered weight beat and does not follow ``w.valid`` either (Amaranth simulator)."""
    from amaranth.sim import Simulator

    u = MVTU(4, 2, 1, 2, BIPOLAR, BIPOLAR, None, None, None, weight_source="stream")
    seen = []

    async def bench(ctx):
        for w_valid, i_valid in [(0, 1), (1, 0), (0, 0), (1, 0), (0, 1), (1, 1)]:
            ctx.set(u.w.valid, w_valid)
            ctx.set(u.i.valid, i_valid)
            seen.append((ctx.get(u.w.ready), ctx.get(u.i.ready)))
            await ctx.tick()

    sim = Simulator(u)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # empty buffer: w ready, i not, whatever w.valid; the beat taken at cycle 1 fills it;
    # full and no input: w held off, i ready; with an input the step frees the buffer (w
    # ready) and, no beat arriving in that cycle, leaves it empty (i not ready)
    assert seen == [(1, 0), (1, 0), (0, 1), (0, 1), (1, 1), (1, 0)]
