# amaranth: UnusedElaboratable=no
"""The engine datapath (``lowbit_hdl.hw.engine``): the numpy reference of one layer against
the golden model (conv, FC-as-conv, pool, raw), the tile-stream packer, and co-simulation of
small layer chains (Icarus; random stalls on the tile stream and the raw/drain sinks) bit-exact
against golden, with the layer cycles of ``cost.engine_layer_cycles`` measured without stalls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lowbit_hdl import golden
from lowbit_hdl.hw.engine.reference import map_to_words, reference_layer, words_to_map
from lowbit_hdl.runtime.dtypes import BIPOLAR, UINT, DataType
from lowbit_hdl.runtime.engine import (
    DESCRIPTOR_FIELDS,
    engine_thresholds,
    layer_tile_words,
    pack_descriptor,
)
from lowbit_hdl.runtime.words import pack_word


@dataclass(frozen=True)
class Spec:
    """One engine layer of a test chain."""

    out_c: int
    k: int = 3
    stride: int = 1
    pad: int = 0
    raw: bool = False
    pool: tuple[int, int, tuple[int, int, int, int]] | None = None  # (k, s, (t, b, l, r))
    fc: bool = False  # kernel = the whole input map


@dataclass
class Built:
    desc: dict
    tiles: np.ndarray
    golden_out: np.ndarray  # next map values (H, W, C), or raw accumulators (P, out_c)
    shape: tuple[int, int, int]


def _u_thresholds(t: np.ndarray, act: DataType, mw: int) -> np.ndarray:
    """Accumulator thresholds → U domain (test-private: ectl owns the conversion)."""
    if act.is_bipolar:   # acc = 2U − MW
        u = -((-(t + mw)) // 2)
        hi = mw
    else:                # acc = U − MW·2^k
        u = t + mw * (1 << act.bits)
        hi = mw * ((1 << (act.bits + 1)) - 1)
    return np.clip(u, 0, hi + 1)


def build_layer(rng, x: np.ndarray, spec: Spec, act: DataType, pe: int, simd: int,
                acc_bits: int, in_buf: int, last: bool, ports: int = 1) -> Built:
    """Random weights/thresholds for ``spec`` on input values ``x`` (H, W, C): descriptor,
    tile words and the golden output."""
    h, w, c = x.shape
    if spec.fc and h != w:
        raise ValueError(f"an FC layer needs a square input map, got {h}×{w}")
    k = h if spec.fc else spec.k
    s, pad = (1, 0) if spec.fc else (spec.stride, spec.pad)
    oc = spec.out_c
    wts = rng.choice([-1, 1], size=(oc, c, k, k))
    pad_value = -1 if act.is_bipolar else 0
    acc = golden.conv2d(x[None], wts, BIPOLAR, act, s, pad, pad_value)[0]   # (OH, OW, oc)
    oh, ow = acc.shape[:2]
    cf = -(-c // simd)
    mw = k * k * cf * simd
    nt = engine_thresholds(None if spec.raw else act)
    if spec.raw:
        out, tu = acc, None
        shift, offset = (1, -mw) if act.is_bipolar else (0, -mw * (1 << act.bits))
    else:
        lo, hi = int(acc.min()) - 2, int(acc.max()) + 2
        t = np.sort(rng.integers(lo, hi + 1, size=(oc, nt)), axis=1)
        out = golden.multithreshold(acc, t, act)
        tu = _u_thresholds(t, act, mw)
        shift, offset = 0, 0
    pool_k, pool_s, pads = 1, 1, (0, 0, 0, 0)
    if spec.pool is not None and not spec.raw:
        pool_k, pool_s, pads = spec.pool
        out = golden.maxpool(out[None], pool_k, pool_s, pads, act.min)[0]
    tiles = layer_tile_words(wts.transpose(0, 2, 3, 1), tu, None if spec.raw else act, pe,
                             simd, acc_bits, ports)
    nf = -(-oc // pe)
    desc = dict(
        in_buf=in_buf, out_buf=1 - in_buf, in_h=h, in_w=w, in_cf=cf, k=k, stride=s,
        pad_t=pad, pad_l=pad, pad_code=int(act.encode(np.array(pad_value))),
        out_h=oh, out_w=ow, nf=nf, out_c=oc, pool_k=pool_k, pool_s=pool_s, pool_t=pads[0],
        pool_l=pads[2], pool_h=out.shape[0] if not spec.raw else oh,
        pool_w=out.shape[1] if not spec.raw else ow, out_cf=-(-oc // simd), raw=int(spec.raw),
        acc_shift=shift, acc_offset=offset, sf=k * k * cf, tile_words=len(tiles) // nf,
        region=0, last=int(last))
    shape = out.shape if not spec.raw else (oh, ow, oc)
    return Built(desc, tiles, out, shape)


def build_chain(rng, x: np.ndarray, specs: list[Spec], act: DataType, pe: int, simd: int,
                acc_bits: int, ports: int = 1) -> list[Built]:
    """The layers of a chain, each on the golden output of the one before."""
    layers = []
    for i, spec in enumerate(specs):
        b = build_layer(rng, x, spec, act, pe, simd, acc_bits, i % 2, i == len(specs) - 1,
                        ports)
        layers.append(b)
        x = b.golden_out
    return layers


def run_reference(x: np.ndarray, layers: list[Built], act: DataType, pe: int, simd: int,
                  acc_bits: int, words: int) -> tuple[list[np.ndarray], list]:
    """Run the chain through the numpy reference: final buffers and each layer's raw beats."""
    bufs = [np.zeros((words, simd), dtype=np.int64) for _ in range(2)]
    w0 = map_to_words(act.encode(x).astype(np.int64), simd)
    bufs[0][:len(w0)] = w0
    raws = [reference_layer(bufs, b.desc, b.tiles, pe, simd, act, acc_bits) for b in layers]
    return bufs, raws


# -- reference vs golden --------------------------------------------------------------------

REF_CASES = {
    # name: (act, pe, simd, (H, W, C), specs)
    "uint2_conv_s2_pool": (UINT(2), 8, 8, (9, 9, 5),
                           [Spec(12, 3, 2, 1), Spec(10, 3, 1, 1, pool=(3, 2, (0, 0, 0, 0))),
                            Spec(7, fc=True, raw=True)]),
    "bipolar_pe_lt_simd": (BIPOLAR, 4, 16, (6, 6, 16),
                           [Spec(32, 3, 1, 1, pool=(2, 2, (0, 0, 0, 0))),
                            Spec(16, 1), Spec(9, fc=True, raw=True)]),
    "bipolar_masked_out": (BIPOLAR, 8, 8, (5, 5, 8), [Spec(16, 3, 2, 1), Spec(13, 2, 1, 0)]),
    "uint1_pe_gt_simd": (UINT(1), 16, 4, (5, 7, 6),
                         [Spec(13, 3, 1, 1, pool=(3, 2, (1, 1, 1, 1))), Spec(5, 2, 1, 0)]),
    "uint4_ceil_pool": (UINT(4), 8, 8, (7, 7, 3),
                        [Spec(9, 3, 1, 0, pool=(2, 2, (0, 1, 0, 1))),
                         Spec(6, fc=True, raw=True)]),
}


@pytest.mark.parametrize("name", sorted(REF_CASES))
def test_reference_matches_golden(name):
    act, pe, simd, shape, specs = REF_CASES[name]
    rng = np.random.default_rng(3)
    x = rng.integers(act.min, act.max + 1, size=shape)
    if act.is_bipolar:
        x = rng.choice([-1, 1], size=shape)
    acc_bits = 16
    layers = build_chain(rng, x, specs, act, pe, simd, acc_bits)
    bufs, raws = run_reference(x, layers, act, pe, simd, acc_bits, 2048)
    for i, (b, raw) in enumerate(zip(layers, raws, strict=True)):
        if b.desc["raw"]:
            oh, ow, oc = b.shape
            nf = b.desc["nf"]
            got = raw.reshape(nf, oh * ow, pe).transpose(1, 0, 2).reshape(oh * ow, nf * pe)
            np.testing.assert_array_equal(got[:, :oc], b.golden_out.reshape(oh * ow, oc),
                                          err_msg=f"{name} layer {i} (raw)")
    last = layers[-1]
    if not last.desc["raw"]:
        got = words_to_map(bufs[last.desc["out_buf"]], last.shape, simd)
        np.testing.assert_array_equal(got, act.encode(last.golden_out),
                                      err_msg=f"{name}: final map")


def test_reference_fuzz():
    # random single layers (geometry, folding, pool, raw) through packer + reference = golden
    rng = np.random.default_rng(11)
    for trial in range(30):
        act = [BIPOLAR, UINT(1), UINT(2), UINT(3), UINT(4)][trial % 5]
        pe, simd = [(8, 8), (4, 16), (16, 4), (8, 16), (32, 2)][rng.integers(5)]
        c = simd * int(rng.integers(1, 3)) if act.is_bipolar else int(rng.integers(1, 20))
        h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        k = int(rng.integers(1, min(h, w, 4) + 1))
        spec = Spec(int(rng.integers(1, 40)), k, int(rng.integers(1, 3)),
                    int(rng.integers(0, k)), raw=bool(rng.integers(2)))
        if not spec.raw and rng.integers(2):
            pk = int(rng.integers(2, 4))
            spec = Spec(spec.out_c, k, spec.stride, spec.pad,
                        pool=(pk, int(rng.integers(1, pk + 1)), (0, int(rng.integers(2)), 0, 0)))
        x = (rng.choice([-1, 1], size=(h, w, c)) if act.is_bipolar
             else rng.integers(0, act.max + 1, size=(h, w, c)))
        layers = build_chain(rng, x, [spec], act, pe, simd, 18)
        bufs, raws = run_reference(x, layers, act, pe, simd, 18, 4096)
        b = layers[0]
        if spec.raw:
            oh, ow, oc = b.shape
            got = raws[0].reshape(b.desc["nf"], oh * ow, pe).transpose(1, 0, 2)
            np.testing.assert_array_equal(got.reshape(oh * ow, -1)[:, :oc],
                                          b.golden_out.reshape(oh * ow, oc), err_msg=str(spec))
        else:
            got = words_to_map(bufs[1], b.shape, simd)
            np.testing.assert_array_equal(got, act.encode(b.golden_out), err_msg=str(spec))


def test_descriptor_layout_matches_packer():
    # the engine's StructLayout is built from DESCRIPTOR_FIELDS: same order and offsets as
    # the packer, acc_offset signed
    from lowbit_hdl.hw.engine import descriptor_layout

    lay = descriptor_layout()
    offsets, at = {}, 0
    for n, b in DESCRIPTOR_FIELDS:
        offsets[n] = at
        at += b
    assert {n: f.offset for n, f in lay} == offsets
    d = {n: 0 for n, _ in DESCRIPTOR_FIELDS} | {"acc_offset": -5, "k": 3, "nf": 7, "last": 1}
    word = pack_word([int(v) for v in pack_descriptor(d)], 64)
    view = lay.from_bits(word)
    got = {n: int(getattr(view, n)) for n in ("acc_offset", "k", "nf", "last", "in_w")}
    assert got == {"acc_offset": -5, "k": 3, "nf": 7, "last": 1, "in_w": 0}


# -- co-simulation --------------------------------------------------------------------------

def cosim_frame(x: np.ndarray, layers: list[Built], params, stall: float,
                cycles: bool) -> dict:
    """One frame of the ``tb_engine`` bench: load words, each layer's descriptor, tile words,
    expected raw beats and cycles, expected drain words."""
    from lowbit_hdl.cost import (
        engine_drain_cycles,
        engine_layer_cycles,
        engine_load_cycles,
        engine_tile_stall_cycles,
    )

    act, pe, simd, ports = params.act, params.pe, params.simd, params.ports
    bufs, raws = run_reference(x, layers, act, pe, simd, params.acc_bits, params.buffer_words)
    codes = act.encode(x).astype(np.int64).reshape(-1, params.load_elems)
    frame = {"load": [pack_word(r.tolist(), act.bits) for r in codes], "stall_load": stall,
             "layers": [], "drain": None, "stall_drain": stall}
    for b, raw in zip(layers, raws, strict=True):
        lay = {"cfg": pack_word([int(v) for v in pack_descriptor(b.desc)], 64),
               "tiles": [pack_word([int(v) for v in b.tiles[i:i + ports]], 64)
                         for i in range(0, len(b.tiles), ports)],
               "stall": stall, "last": b.desc["last"],
               "raw": None, "cycles": None}
        if raw is not None:
            lay["raw"] = [pack_word(r.tolist(), params.raw_bits) for r in raw]
        if cycles:
            lay["cycles"] = engine_layer_cycles(b.desc, pe, simd, ports)
            lay["stall_count"] = engine_tile_stall_cycles(b.desc, pe, simd, ports)
        frame["layers"].append(lay)
    last = layers[-1]
    if not last.desc["raw"] and params.drain_shape is not None:
        n = params.map_words(params.drain_shape)
        frame["drain"] = [pack_word(w.tolist(), act.bits)
                          for w in bufs[last.desc["out_buf"]][:n]]
        if cycles:
            frame["drain_cycles"] = engine_drain_cycles(params.drain_shape, simd)
    if cycles:
        frame["load_cycles"] = engine_load_cycles(x.shape, params.load_elems, simd)
    return frame


def run_cosim(name: str, act, pe: int, simd: int, shape, specs, load_elems: int,
              acc_bits: int = 14, raw_bits: int = 16, frames=((0.0, True), (0.3, False)),
              simulator: str = "icarus", ports: int = 1, overlap: bool = False) -> None:
    from lowbit_hdl.hw.engine import EngineDatapath, EngineParams
    from sim.units import simulate

    rng = np.random.default_rng(7)
    cfg_frames = []
    params = None
    for stall, cycles in frames:
        x = (rng.choice([-1, 1], size=shape) if act.is_bipolar
             else rng.integers(act.min, act.max + 1, size=shape))
        layers = build_chain(rng, x, specs, act, pe, simd, acc_bits, ports)
        if params is None:
            words = max(max(b.desc["in_h"] * b.desc["in_w"] * b.desc["in_cf"],
                            b.desc["pool_h"] * b.desc["pool_w"] * b.desc["out_cf"])
                        for b in layers)
            last = layers[-1]
            params = EngineParams(
                pe, simd, act, buffer_words=words,
                max_sf=max(b.desc["sf"] for b in layers), acc_bits=acc_bits,
                raw_bits=raw_bits if any(s.raw for s in specs) else 0, ports=ports,
                load_shape=tuple(shape), load_elems=load_elems,
                drain_shape=None if last.desc["raw"] else last.shape)
        frame = cosim_frame(x, layers, params, stall, cycles)
        frame["overlap"] = overlap
        if not cfg_frames and not overlap:
            # descriptors the datapath must reject (error code, done the next cycle, nothing
            # run), before the frame's good layers
            d = layers[0].desc
            for bad, code in ((d | {"sf": d["sf"] + 1}, 1), (d | {"out_buf": d["in_buf"]}, 2),
                              (d | {"tile_words": d["tile_words"] + ports}, 4)):
                frame["layers"].insert(0, {
                    "cfg": pack_word([int(v) for v in pack_descriptor(bad)], 64), "tiles": [],
                    "stall": 0.0, "last": 0, "raw": None, "cycles": 1, "error": code})
        cfg_frames.append(frame)
    simulate(EngineDatapath(params), f"engine_{name}", "tb_engine", {"frames": cfg_frames},
             simulator)


#: the tile stream over 2 and 4 read masters (128- and 256-bit beats): UINT2 thresholds of
#: 8·3·13 bits = 5 words padded to 6 (2 ports), a raw FC; BIPOLAR, pe = simd = 16, 4 ports,
#: an FC whose tiles load slower than they compute
PORTS_COSIM = {
    "uint2_ports2": (UINT(2), 8, 16, (7, 7, 16), 16, 13, 2,
                     [Spec(16, 3, 1, 1, pool=(2, 2, (0, 0, 0, 0))), Spec(8, 2, 1, 0),
                      Spec(10, fc=True, raw=True)]),
    "bipolar_ports4": (BIPOLAR, 16, 16, (4, 4, 16), 16, 14, 4,
                       [Spec(32, 3, 1, 1), Spec(24, fc=True)]),
}


@pytest.mark.parametrize("name", sorted(PORTS_COSIM))
def test_engine_cosim_ports(name):
    act, pe, simd, shape, elems, acc_bits, ports, specs = PORTS_COSIM[name]
    run_cosim(name, act, pe, simd, shape, specs, elems, acc_bits=acc_bits, ports=ports)


COSIM = {
    # name: (act, pe, simd, input (H, W, C), load_elems, specs)
    # 3×3 stride 2 pad 1 (out_c 12: masked lanes), 3×3 + overlapping pool 3/2, raw FC
    "uint2": (UINT(2), 8, 8, (9, 9, 4), 4,
              [Spec(12, 3, 2, 1), Spec(10, 3, 1, 1, pool=(3, 2, (0, 0, 0, 0))),
               Spec(7, fc=True, raw=True)]),
    # BIPOLAR, pe < simd: conv + pool 2/2, a 1×1 conv, then an FC to 20 channels (drained;
    # its tiles load slower than they compute: per-tile stalls)
    "bipolar_narrow": (BIPOLAR, 4, 16, (6, 6, 16), 16,
                       [Spec(32, 3, 1, 1, pool=(2, 2, (0, 0, 0, 0))), Spec(32, 1),
                        Spec(20, fc=True)]),
    # UINT1, pe > simd: padded pool 2/2 (ceil mode), 2×2 conv, raw 2×2 conv (NF 2, two
    # output pixels); load beats of 2 words
    "uint1_wide": (UINT(1), 16, 4, (5, 7, 8), 8,
                   [Spec(13, 3, 1, 1, pool=(2, 2, (0, 1, 0, 1))), Spec(5, 2, 1, 0),
                    Spec(18, 2, raw=True)]),
    # writer-bound: a 1×1 conv (SF = 2) into a padded pool 3/1 with pe = 4·simd (up to 9
    # positions × 4 words per beat): the output FIFO's credits throttle the core
    "writer_bound": (UINT(2), 16, 4, (5, 5, 8), 4,
                     [Spec(16, 1, 1, 0, pool=(3, 1, (1, 1, 1, 1))), Spec(8, 3, 1, 1)]),
    # Tiny-YOLO's stride-1 pool 2/1 (pads bottom/right), then a BIPOLAR × BIPOLAR raw FC
    # (acc = 2U − MW), CNV's fc2 → top-k shape
    "bipolar_raw": (BIPOLAR, 8, 8, (4, 4, 8), 8,
                    [Spec(16, 3, 1, 1, pool=(2, 1, (0, 1, 0, 1))), Spec(10, fc=True, raw=True)]),
}


@pytest.mark.parametrize("name", sorted(COSIM))
def test_engine_cosim(name):
    act, pe, simd, shape, elems, specs = COSIM[name]
    run_cosim(name, act, pe, simd, shape, specs, elems)


def test_engine_cosim_overlap():
    """The first layer starts with the load, which is slower than its compute (stall 0.8),
    so its beats wait for the words not yet written: bit-exact, and its ``done`` after
    ``load_done``. Frames of a stride-2 padded conv, one with the last pixels unread by a
    3×3 stride-2 window without padding (its done waits for the rest of the map)."""
    act, pe, simd, shape, elems, specs = COSIM["uint2"]
    run_cosim("uint2_overlap", act, pe, simd, shape, specs, elems,
              frames=((0.8, False), (0.5, False)), overlap=True)
    run_cosim("uint2_overlap_unread", act, pe, simd, (10, 10, 4), [Spec(8, 3, 2, 0),
              Spec(7, fc=True, raw=True)], elems, frames=((0.9, False),), overlap=True)


# -- parameter checks, packer, formula ------------------------------------------------------

def test_engine_params_checks():
    from lowbit_hdl.hw.engine import EngineDatapath, EngineParams

    ok = dict(pe=8, simd=8, act=UINT(2), buffer_words=64, max_sf=9, acc_bits=12)
    EngineParams(**ok)
    for bad, exc in [({"pe": 8.0}, TypeError), ({"act": "UINT2"}, TypeError),
                     ({"load_shape": [4, 4, 8]}, TypeError),
                     ({"pe": 3}, ValueError),                    # neither divides
                     ({"pe": 4, "simd": 8}, ValueError),         # pe·simd not ×64
                     ({"act": UINT(5)}, ValueError), ({"act": DataType("int", 2)}, ValueError),
                     ({"ports": 3}, ValueError), ({"ports": 2, "pe": 8, "simd": 8}, ValueError),
                     ({"buffer_words": 0}, ValueError),
                     ({"raw_bits": -1}, ValueError),
                     ({"load_shape": (4, 4, 8), "load_elems": 3}, ValueError),
                     ({"load_shape": (4, 4, 6), "load_elems": 4}, ValueError),
                     ({"act": BIPOLAR, "load_shape": (4, 4, 4), "load_elems": 4}, ValueError),
                     ({"drain_shape": (9, 9, 8)}, ValueError)]:          # 81 > 64 words
        with pytest.raises(exc):
            EngineParams(**(ok | bad))
    with pytest.raises(TypeError):
        EngineDatapath(ok)


def test_layer_tile_words_format_and_checks():
    from lowbit_hdl.runtime.ddr import layer_weight_words
    from lowbit_hdl.runtime.engine import tile_threshold_words, tile_weight_words

    rng = np.random.default_rng(1)
    w = rng.choice([-1, 1], size=(6, 2, 2, 8))        # MH 6 → NF 2 with pe 4
    t = np.sort(rng.integers(0, 300, size=(6, 3)), axis=1)
    words = layer_tile_words(w, t, UINT(2), 4, 16, 10)
    tw, ww = tile_threshold_words(4, UINT(2), 10), tile_weight_words(4, 4, 16)
    assert (tw, ww) == (2, 4) and words.dtype == np.uint64 and len(words) == 2 * (tw + ww)
    tiles = words.reshape(2, tw + ww)
    # thresholds: element p·T + t, 10 bits, padded neurons 0
    t0 = pack_word([int(v) for v in t[:4].reshape(-1)], 10)
    assert [int(v) for v in tiles[0, :tw]] == [t0 & (2**64 - 1), t0 >> 64]
    t1 = pack_word([int(v) for v in t[4:].reshape(-1)] + [0] * 6, 10)
    assert [int(v) for v in tiles[1, :tw]] == [t1 & (2**64 - 1), t1 >> 64]
    # weights: the ddr.py beats of the (NF·pe, K·K·CF·simd) matrix, channels padded with −1
    wm = -np.ones((8, 2, 2, 16), dtype=np.int64)
    wm[:6, :, :, :8] = w
    ref = layer_weight_words(wm.reshape(8, 64), BIPOLAR, 4, 16).reshape(2, ww)
    np.testing.assert_array_equal(tiles[:, tw:], ref)
    # raw layers: weights only
    assert len(layer_tile_words(w, None, None, 4, 16, 10)) == 2 * ww
    for args, exc in [((w[0], t, UINT(2)), ValueError), ((w * 2, t, UINT(2)), ValueError),
                      ((w, t[:, :1], UINT(2)), ValueError), ((w, t + 2000, UINT(2)), ValueError),
                      ((w, -t - 1, UINT(2)), ValueError), ((w, t, None), ValueError),
                      ((w, t[:, :1], DataType("int", 2)), ValueError)]:
        with pytest.raises(exc):
            layer_tile_words(*args, 4, 16, 10)
    with pytest.raises(ValueError):
        layer_tile_words(w, t, UINT(2), 4, 8, 10)        # pe·simd = 32
    with pytest.raises(TypeError):
        layer_tile_words(w, t, UINT(2), 4.0, 16, 10)


def test_engine_layer_cycles_formula():
    from lowbit_hdl.cost import (
        engine_layer_cycles,
        engine_tile_stall_cycles,
    )

    d = {"nf": 3, "sf": 9, "out_h": 2, "out_w": 2, "tile_words": 10, "raw": 0,
         "pool_k": 1, "pool_s": 1, "pool_t": 0, "pool_l": 0, "pool_h": 2, "pool_w": 2,
         "out_cf": 3}
    # 3 ≤ L ≤ T − 3: NF·P·SF + L + 6 + W_last (one plain write + its landing)
    assert engine_layer_cycles(d, 8, 8) == 3 * 4 * 9 + 10 + 6 + 2
    assert engine_tile_stall_cycles(d, 8, 8) == 10 + 2 - 6
    # slow tiles (L = 50 > T = 36): tile n computes from the end of its load
    slow = d | {"tile_words": 50}
    assert engine_layer_cycles(slow, 8, 8) == 2 + 3 * 50 + 35 + 5 + 2
    assert engine_tile_stall_cycles(slow, 8, 8) == 2 + 50 - 6 + 2 * (50 - 36)
    # tiny tiles (L = 1): the reader's setup and queue decide the first issue
    tiny = d | {"tile_words": 1}
    assert engine_layer_cycles(tiny, 8, 8) == 6 + 3 * 36 - 1 + 5 + 2
    assert engine_tile_stall_cycles(tiny, 8, 8) == 0
    # pool 3/1 with pe = 4·simd: up to 9 positions × 4 words > SF = 9: writer-bound, the
    # FIFO credits throttle the core (co-simulated in "writer_bound")
    pooled = d | {"pool_k": 3, "out_h": 4, "out_w": 4, "nf": 1, "out_cf": 4}
    # last pixel (3, 3) of the 2×2 pooled map: 3×3 candidates, 8 outside (1 cycle each),
    # 1 inside (1 word), then its write lands
    assert engine_layer_cycles(pooled, 8, 8) == 16 * 9 + 10 + 6 + 9 + 1
    assert engine_layer_cycles(pooled, 16, 4) > 16 * 9 + 10 + 6 + 9 * 4 + 1
    with pytest.raises(ValueError):
        engine_layer_cycles(d | {"sf": 0}, 8, 8)


def test_engine_map_release():
    """A 3×3 pad-1 conv on a 4×4 map of one word per pixel, loaded over 32 cycles from the
    layer's start: output pixel (0, 0) needs input pixel (1, 1), word 5, written at cycle
    ceil(6·32/16) = 12; the last pixels need the last word (cycle 32); 4 words waiting in
    the FIFO come one per cycle; a late map makes the layer's first pass follow it."""
    from lowbit_hdl.cost import engine_layer_cycles, engine_map_release

    def ceil_div(a: int, b: int) -> int:
        return -(-a // b)

    d = {"in_h": 4, "in_w": 4, "in_cf": 1, "k": 3, "stride": 1, "pad_t": 1, "pad_l": 1,
         "out_h": 4, "out_w": 4, "nf": 2, "sf": 9, "tile_words": 10, "raw": 0, "pool_k": 1,
         "pool_s": 1, "pool_t": 0, "pool_l": 0, "pool_h": 4, "pool_w": 4, "out_cf": 1}
    rel = engine_map_release(d, 32, 0)
    assert rel[0] == 13 and rel[5] == ceil_div(11 * 32, 16) + 1 and rel[-1] == 33
    assert rel[3] == rel[2] == ceil_div(8 * 32, 16) + 1        # x clipped to the map
    assert engine_map_release(d, 32, 10)[0] == 3               # lead: the load began earlier
    head = engine_map_release(d, 32, 0, head=4)
    assert head[0] == max(6, ceil_div(2 * 32, 16)) + 1 and head[-1] == ceil_div(12 * 32, 16) + 1
    free = engine_layer_cycles(d, 8, 8)
    assert engine_layer_cycles(d, 8, 8, release=[0] * 16) == free
    slow = engine_map_release(d, 1600, 0)   # 100 cycles per word: pass 0 follows the map
    late = engine_layer_cycles(d, 8, 8, release=slow)
    assert late > 1600 and late - 1600 < free


def _random_chain(rng, act, pe: int, simd: int, max_sf: int, shape) -> list[Spec]:
    """1–2 random conv layers (kernel, stride, pad, pool) and a raw 1×1 conv or FC."""
    h, w, _ = shape
    specs = []
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.integers(1, 4))
        s, pad = int(rng.integers(1, 3)), int(rng.integers(0, k))
        oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
        if oh < 1 or ow < 1:
            break
        out_c = 8 * int(rng.integers(1, 3)) if act.is_bipolar else int(rng.integers(1, 20))
        pool = None
        if min(oh, ow) >= 2 and rng.integers(2):
            pk = int(rng.integers(2, min(oh, ow, 3) + 1))
            ps = int(rng.integers(1, pk + 1))
            pads = tuple(int(v) for v in rng.integers(0, 2, size=4))
            ph = (oh + pads[0] + pads[1] - pk) // ps + 1
            pw = (ow + pads[2] + pads[3] - pk) // ps + 1
            if ph >= 1 and pw >= 1:
                pool, oh, ow = (pk, ps, pads), ph, pw
        specs.append(Spec(out_c, k, s, pad, pool=pool))
        h, w = oh, ow
    fc = bool(rng.integers(2)) and h == w and h * w * 2 <= max_sf
    specs.append(Spec(int(rng.integers(1, 20)), 1, raw=True, fc=fc))
    return specs


def test_engine_cosim_runtime_geometry():
    # one build, several frames of random layer chains: the geometry is all runtime
    from lowbit_hdl.hw.engine import EngineDatapath, EngineParams
    from sim.units import simulate

    act, pe, simd, shape = UINT(2), 8, 8, (7, 6, 8)
    params = EngineParams(pe, simd, act, buffer_words=128, max_sf=72, acc_bits=14,
                          raw_bits=18, load_shape=shape, load_elems=8)
    rng = np.random.default_rng(5)
    frames = []
    while len(frames) < 6:
        specs = _random_chain(rng, act, pe, simd, params.max_sf, shape)
        x = rng.integers(0, act.max + 1, size=shape)
        layers = build_chain(rng, x, specs, act, pe, simd, params.acc_bits)
        ok = all(b.desc["sf"] <= params.max_sf and max(
            b.desc["in_h"] * b.desc["in_w"] * b.desc["in_cf"],
            b.desc["pool_h"] * b.desc["pool_w"] * b.desc["out_cf"]) <= params.buffer_words
            for b in layers)
        if ok:
            frames.append(cosim_frame(x, layers, params, 0.2 * (len(frames) % 2),
                                      len(frames) % 2 == 0))
    simulate(EngineDatapath(params), "engine_runtime", "tb_engine", {"frames": frames},
             "icarus")
