"""The engine's runtime format (``lowbit_hdl.runtime.engine``): the accumulator domain
(``runtime.accdomain``), the compiler (descriptors, tile regions, DDR image) and the numpy
interpreter of an image, checked against the golden model on small random networks and the
engine part of CNV-W1A1; the named errors for layers the engine cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from lowbit_hdl import golden
from lowbit_hdl.ir import FC, Conv, MaxPool, Network, TopK
from lowbit_hdl.netfile import load_network
from lowbit_hdl.runtime import accdomain
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.runtime.engine import (
    DESCRIPTOR_WORDS,
    REGION_ALIGN,
    EngineFormat,
    EngineLayerError,
    check_descriptor,
    engine_descriptors,
    engine_image,
    engine_layer_words,
    engine_requirements,
    pack_descriptor,
    pool_targets,
    read_descriptors,
    run_engine_image,
)
from lowbit_hdl.runtime.words import unpack_word

# -- the accumulator domain ------------------------------------------------------------------


@pytest.mark.parametrize("wdt,xdt", [(BIPOLAR, BIPOLAR), (BIPOLAR, UINT(2)), (BIPOLAR, UINT(4)),
                                     (INT(2), UINT(2)), (INT(2), BIPOLAR), (BIPOLAR, INT(3)),
                                     (INT(8), UINT(8))])
def test_acc_domain_exact(wdt, xdt):
    """``acc = scale·U + offset`` with ``U`` in ``u_range``, and ``acc ≥ T ⟺ U ≥ T_U`` for
    every threshold, on random dot products (U computed from the lane constant)."""
    rng = np.random.default_rng(1)
    mw = 13
    mode, scale, offset = accdomain.acc_domain(wdt, xdt, mw)
    lo, hi = accdomain.u_range(wdt, xdt, mw)
    for _ in range(200):
        w = rng.integers(wdt.min, wdt.max + 1, mw)
        x = rng.integers(xdt.min, xdt.max + 1, mw)
        if wdt.is_bipolar:
            w = np.where(w >= 0, 1, -1)
        if xdt.is_bipolar:
            x = np.where(x >= 0, 1, -1)
        acc = int(w @ x)
        if mode == "xnor":
            u = int(np.sum(w == x))
        elif mode == "bits":
            u = acc - mw * accdomain.lane_constant(xdt, wdt)
        else:
            u = acc
        assert scale * u + offset == acc and lo <= u <= hi
        t = rng.integers(lo * scale + offset - 3, hi * scale + offset + 4, 5)
        tu = accdomain.thresholds_to_u(t, wdt, xdt, mw)
        assert ((acc >= t) == (u >= tu)).all()
        assert (tu >= lo).all() and (tu <= hi + 1).all()


def test_lane_products_sum():
    """Every lane product equals the sum of its one-bit terms plus the constant, for every
    pair of encoded values."""
    for wdt, xdt in [(BIPOLAR, UINT(3)), (INT(3), UINT(2)), (INT(2), BIPOLAR),
                     (BIPOLAR, INT(2))]:
        prods, const = accdomain.lane_products(xdt, wdt)
        for wv in range(wdt.min, wdt.max + 1):
            for xv in range(xdt.min, xdt.max + 1):
                if (wdt.is_bipolar and wv == 0) or (xdt.is_bipolar and xv == 0):
                    continue
                bits = {"w": int(wdt.encode(np.array([wv]))[0]),
                        "x": int(xdt.encode(np.array([xv]))[0])}
                total = const
                for k, ops, op in prods:
                    vals = [(bits[v] >> j) & 1 for v, j in ops]
                    t = vals[0] if op == "bit" else (vals[0] & vals[1] if op == "and"
                                                     else int(vals[0] == vals[1]))
                    total += k * t
                assert total == wv * xv, (wdt, xdt, wv, xv)


# -- compiler and interpreter against the golden model ---------------------------------------

def _check(net: Network, fmt: EngineFormat, seed: int = 0, skip: int = 0, images: int = 2):
    """Randomize ``net``, run its layers from ``skip`` on through the engine image and compare
    with the golden model (``skip`` leading layers run in the golden model as the front)."""
    net.randomize(seed)
    infos = net.infer(check_params=True)
    eng = [i for i in infos[skip:] if i.layer.kind != "topk"]
    image = engine_image(eng, fmt)
    descs = read_descriptors(image)
    assert descs == engine_descriptors(eng, fmt)
    rng = np.random.default_rng(seed)
    dt = net.input_dtype
    x = rng.integers(dt.min, dt.max + 1, (images, *net.input_shape))
    if dt.is_bipolar:
        x = np.where(x >= 0, 1, -1)
    res = golden.forward(net, x, exact=True)
    for n in range(images):
        start = res.intermediates[infos[skip - 1].name][n] if skip else x[n]
        codes = fmt.act.encode(np.asarray(start).transpose(1, 2, 0))
        run = run_engine_image(image, codes, fmt)
        want = res.intermediates[eng[-1].name][n].transpose(1, 2, 0)
        got = run.output if descs[-1]["raw"] else fmt.act.decode(run.output)
        np.testing.assert_array_equal(got, want)
    return image, descs, run


def test_uint2_conv_pool_fc_raw():
    """UINT2 activations: padded conv with channels not a multiple of simd, 2×2 pool, stride 2
    conv, an FC on a 2×2 map, a raw last FC; out channels not a multiple of pe."""
    a = UINT(2)
    net = Network("e1", (12, 9, 9), [
        Conv("c0", 20, 3, padding=1, act=a), MaxPool("p0", 2),
        Conv("c1", 16, 3, stride=2, padding=1, act=a),
        FC("f0", 24, act=a), FC("f1", 10, act=None),
    ], UINT(2))
    fmt = EngineFormat(pe=8, simd=8, act=a, acc_bits=12, buffer_words=256, max_sf=64,
                       raw_bits=16)
    image, descs, run = _check(net, fmt)
    assert [d["k"] for d in descs] == [3, 3, 2, 1]
    assert descs[0]["in_cf"] == 2 and descs[0]["sf"] == 18 and descs[0]["nf"] == 3
    assert descs[0]["pool_k"] == 2 and (descs[0]["pool_h"], descs[0]["pool_w"]) == (4, 4)
    assert [d["in_buf"] for d in descs] == [0, 1, 0, 1]
    assert descs[-1]["raw"] == 1 and descs[-1]["acc_shift"] == 0 and descs[-1]["last"] == 1
    # the raw stream: NF beats of pe lanes, all lanes emitted
    assert run.raw_beats.shape == (2, 8)
    np.testing.assert_array_equal(run.raw_beats.reshape(-1)[:10], run.output.reshape(-1))
    # regions 4 KiB aligned, after the table
    assert descs[0]["region"] >= 8 * (1 + 4 * DESCRIPTOR_WORDS)
    assert all(d["region"] % REGION_ALIGN == 0 for d in descs)
    assert image.size * 8 == descs[-1]["region"] + REGION_ALIGN


def test_bipolar_same_pool_pe_gt_simd():
    """BIPOLAR activations (pad code 0 = −1), a 3×3/2 pool with "same" padding, pe > simd."""
    net = Network("e2", (8, 7, 7), [
        Conv("c0", 32, 3, padding=1), MaxPool("p0", 3, 2, padding="same"),
        Conv("c1", 16, 2), FC("f0", 16), FC("f1", 10, act=None),
    ], BIPOLAR)
    fmt = EngineFormat(pe=16, simd=4, act=BIPOLAR, acc_bits=10, buffer_words=512,
                       max_sf=64, raw_bits=12)
    _, descs, _ = _check(net, fmt, seed=3)
    assert descs[0]["pool_t"] == 1 and descs[0]["pool_l"] == 1
    assert descs[-1]["acc_shift"] == 1 and descs[-1]["acc_offset"] == -descs[-1]["sf"] * 4


def test_nonzero_pad_value():
    """A UINT pad value ≠ 0 (C a multiple of simd): every lane of the pad word holds it."""
    a = UINT(2)
    net = Network("pv", (16, 5, 5), [Conv("c0", 8, 3, padding=1, pad_value=2, act=a),
                                     Conv("c1", 8, 2, stride=2, padding=1, act=a)], a)
    fmt = EngineFormat(pe=4, simd=16, act=a, acc_bits=12, buffer_words=64, max_sf=64)
    _, descs, _ = _check(net, fmt, seed=2)
    assert [d["pad_code"] for d in descs] == [2, 0]


def test_uint3_pe_lt_simd_thresholds_out():
    """UINT3 activations out of the last layer (no raw), pe < simd (several tiles per word),
    stride 2 without padding."""
    a = UINT(3)
    net = Network("e3", (10, 8, 8), [
        Conv("c0", 12, 3, stride=2, act=a), Conv("c1", 20, 1, act=a), MaxPool("p", 2),
    ], a)
    fmt = EngineFormat(pe=4, simd=16, act=a, acc_bits=14, buffer_words=64, max_sf=16)
    _check(net, fmt, seed=5, images=3)


def test_cnv_w1a1_engine_part():
    """CNV-W1A1 with random weights: conv0 (8-bit pixels) in the golden model as the front,
    conv1 … fc2 (raw) through the engine image."""
    net = load_network("networks/cnv_w1a1.py")
    fmt = EngineFormat(pe=16, simd=32, act=BIPOLAR, acc_bits=13, buffer_words=2048,
                       max_sf=72, raw_bits=12)
    _, descs, run = _check(net, fmt, seed=7, skip=1, images=1)
    assert len(descs) == 8 and descs[-1]["raw"]
    assert [d["k"] for d in descs[-3:]] == [1, 1, 1]
    assert run.output.shape == (1, 1, 10)


@pytest.mark.parametrize("oh,ow,k,s,pt,pb,pl,pr", [
    (6, 6, 2, 2, 0, 0, 0, 0), (7, 5, 3, 2, 1, 1, 1, 1), (5, 5, 3, 1, 1, 1, 0, 2),
    (9, 9, 3, 3, 0, 0, 0, 0), (4, 6, 2, 1, 0, 1, 1, 0), (5, 5, 1, 1, 0, 0, 0, 0)])
def test_pool_targets(oh, ow, k, s, pt, pb, pl, pr):
    """In raster order every pooled position gets its first contributor first and exactly
    once, and its contributors are exactly the conv pixels of its (clipped) window."""
    ph, pw = (oh + pt + pb - k) // s + 1, (ow + pl + pr - k) // s + 1
    d = {"pool_k": k, "pool_s": s, "pool_t": pt, "pool_l": pl, "pool_h": ph, "pool_w": pw}
    seen: dict[tuple[int, int], list[tuple[int, int, bool]]] = {}
    for oy in range(oh):
        for ox in range(ow):
            for py, px, first in pool_targets(d, oy, ox):
                seen.setdefault((py, px), []).append((oy, ox, first))
    assert len(seen) == ph * pw
    for (py, px), contrib in seen.items():
        assert [c[2] for c in contrib] == [True] + [False] * (len(contrib) - 1)
        want = [(y, x) for y in range(max(py * s - pt, 0), min(py * s - pt + k, oh))
                for x in range(max(px * s - pl, 0), min(px * s - pl + k, ow))]
        assert [(y, x) for y, x, _ in contrib] == want


def test_tile_format():
    """Tile words decode to the spec's layout: thresholds first (U domain, element p·T + t),
    then beat sf, bit p·simd + s = weight code of W[nf·pe + p, (ky, kx, cf·simd + s)]."""
    a = UINT(2)
    net = Network("t", (5, 4, 4), [Conv("c0", 6, 2, act=a)], a).randomize(2)
    fmt = EngineFormat(pe=4, simd=16, act=a, acc_bits=9, buffer_words=64, max_sf=8)
    info = net.infer()[0]
    d = engine_descriptors([info], fmt)[0]
    words = engine_layer_words(info, d, fmt)
    assert d["tile_words"] == 2 + 4 and words.size == 2 * 6  # 4·3·9 bits → 2 words; 4 beats
    wm = info.weight_matrix().reshape(6, 2, 2, 5)
    tu = accdomain.thresholds_to_u(net["c0"].thresholds, BIPOLAR, a, d["sf"] * 16)
    for f in range(2):
        tile = [int(v) for v in words[f * 6:(f + 1) * 6]]
        thr = unpack_word(tile[0] | tile[1] << 64, 9, 12)
        for p in range(4):
            ch = f * 4 + p
            want = tu[ch].tolist() if ch < 6 else [0, 0, 0]
            assert thr[p * 3:(p + 1) * 3] == want
        for sf in range(4):
            beat = tile[2 + sf]
            ky, kx = divmod(sf, 2)
            for p in range(4):
                for s in range(16):
                    ch = f * 4 + p
                    code = 1 if ch < 6 and s < 5 and wm[ch, ky, kx, s] > 0 else 0
                    assert (beat >> (p * 16 + s)) & 1 == code


# -- named errors ----------------------------------------------------------------------------

FMT = EngineFormat(pe=8, simd=8, act=UINT(2), acc_bits=12, buffer_words=256, max_sf=64,
                   raw_bits=16)


@pytest.mark.parametrize("layers,in_dtype,shape,fmt,match", [
    ([Conv("c", 8, 3, weight_dtype=INT(2), act=UINT(2))], UINT(2), (8, 6, 6), FMT,
     "layer c: weight type INT2 is not BIPOLAR"),
    ([Conv("c", 8, 3, act=UINT(2))], UINT(3), (8, 6, 6), FMT,
     "layer c: input type UINT3 is not the engine's"),
    ([Conv("c", 8, 3, act=UINT(3))], UINT(2), (8, 6, 6), FMT,
     "layer c: output type UINT3"),
    ([Conv("c", 8, 3)], BIPOLAR, (12, 6, 6),
     EngineFormat(8, 8, BIPOLAR, 12, 256, 64), "BIPOLAR C % simd"),
    ([Conv("c", 8, 3, act=UINT(2))], UINT(2), (8, 20, 20), FMT, "layer c: input map"),
    ([Conv("c", 16, 1, act=UINT(2))], UINT(2), (8, 12, 12), FMT, "layer c: output map"),
    ([Conv("c", 8, 9, act=UINT(2))], UINT(2), (8, 9, 9), FMT, "rule: max_sf"),
    ([Conv("c", 8, 1, stride=16, act=UINT(2))], UINT(2), (8, 1, 1), FMT,
     "layer c: stride=16 does not fit"),
    ([Conv("c", 8, 3, padding=16, act=UINT(2))], UINT(2), (8, 1, 1),
     EngineFormat(8, 8, UINT(2), 12, 1 << 14, 64), "layer c: pad_t=16 does not fit"),
    ([Conv("c", 8, 3, act=None)], UINT(2), (8, 6, 6),
     EngineFormat(8, 8, UINT(2), 12, 256, 64), "rule: raw_bits"),
    ([Conv("c", 8, 3, act=UINT(2))], UINT(2), (8, 6, 6),
     EngineFormat(8, 8, UINT(2), 8, 256, 64), "rule: acc_bits"),
    ([Conv("c", 8, 3, act=UINT(2)), TopK("t")], UINT(2), (8, 6, 6), FMT,
     "layer t: topk layers do not run on the engine"),
    ([FC("f", 8, act=UINT(2))], UINT(2), (8, 2, 3), FMT, "fc input map 2×3 is not square"),
    ([Conv("c", 8, 3, padding=1, pad_value=1, act=UINT(2))], UINT(2), (12, 4, 4), FMT,
     "layer c: pad value 1 .*rule: pad_code 0 or C % simd == 0"),
])
def test_named_errors(layers, in_dtype, shape, fmt, match):
    net = Network("bad", shape, layers, in_dtype)
    with pytest.raises(EngineLayerError, match=match):
        engine_descriptors(net.infer(), fmt)


def test_chain_errors():
    """Layers must chain (each input the previous output map); a raw layer only last."""
    a = UINT(2)
    raw = Network("r", (8, 6, 6), [Conv("c", 8, 3, act=None)], a).infer()
    nxt = Network("n", (8, 4, 4), [Conv("d", 8, 1, act=a)], a).infer()
    other = Network("o", (8, 5, 5), [Conv("e", 8, 1, act=a)], a).infer()
    with pytest.raises(EngineLayerError, match="layer c: raw accumulators"):
        engine_descriptors(raw + nxt, FMT)
    with pytest.raises(EngineLayerError, match="layer e: input map 5×5×8 is not the output"):
        engine_descriptors(nxt + other, FMT)


def test_pool_padding_error():
    """A pool padding beyond its 2-bit field is a named error."""
    a = UINT(2)
    net = Network("p", (8, 8, 8), [Conv("c", 8, 1, act=a),
                                   MaxPool("p", 5, 1, padding=(4, 0, 4, 0))], a)
    with pytest.raises(EngineLayerError, match="layer c: pool_t=4 does not fit"):
        engine_descriptors(net.infer(), FMT)


def test_format_and_descriptor_checks():
    with pytest.raises(ValueError, match="pe·simd=32 must be a multiple of 64"):
        EngineFormat(4, 8, BIPOLAR, 12, 64, 8)
    with pytest.raises(ValueError, match="k ≤ 4"):
        EngineFormat(8, 8, UINT(5), 12, 64, 8)
    with pytest.raises(TypeError):
        EngineFormat(8, 8, "UINT2", 12, 64, 8)
    net = Network("d", (8, 4, 4), [Conv("c", 8, 3, act=UINT(2))], UINT(2)).randomize(0)
    d = engine_descriptors(net.infer(), FMT)[0]
    check_descriptor(d, FMT)
    for field, value, rule in [("sf", 8, "sf=8 must be K·K·in_cf"), ("nf", 0, "nf=0"),
                               ("out_buf", 0, "in_buf == out_buf"),
                               ("tile_words", 3, "tile_words=3")]:
        with pytest.raises(EngineLayerError, match=rule):
            check_descriptor({**d, field: value}, FMT, "c")
    # the interpreter rejects a corrupted table the same way
    image = engine_image(net.infer(), FMT)
    image[1:1 + DESCRIPTOR_WORDS] = pack_descriptor({**d, "sf": 8})
    with pytest.raises(EngineLayerError, match="sf=8"):
        run_engine_image(image, np.zeros((4, 4, 8), np.int64), FMT)


def test_interpreter_matches_datapath_reference():
    """Layer by layer, the interpreter leaves the buffers (and raw beats) that the datapath's
    numpy reference (``hw/engine/reference.py``) computes from the same descriptors and
    tile regions."""
    from lowbit_hdl.hw.engine.reference import reference_layer

    a = UINT(2)
    net = Network("x", (12, 9, 9), [
        Conv("c0", 20, 3, padding=1, act=a), MaxPool("p0", 3, 2, padding="same"),
        Conv("c1", 16, 3, stride=2, padding=1, act=a), FC("f1", 10, act=None),
    ], a).randomize(4)
    fmt = EngineFormat(pe=4, simd=16, act=a, acc_bits=12, buffer_words=256, max_sf=64,
                       raw_bits=16)
    image = engine_image(net.infer(), fmt)
    descs = read_descriptors(image)
    x = np.random.default_rng(4).integers(0, 4, (9, 9, 12))
    full = run_engine_image(image, x, fmt, seed=None)
    bufs = [np.zeros((fmt.buffer_words, fmt.simd), np.int64) for _ in range(2)]
    bufs[0][:81] = np.pad(x, ((0, 0), (0, 0), (0, 4))).reshape(81, 16)
    for n, d in enumerate(descs):
        region = image[d["region"] // 8:d["region"] // 8 + d["nf"] * d["tile_words"]]
        raw = reference_layer(bufs, d, region, fmt.pe, fmt.simd, a, fmt.acc_bits)
        if d["raw"]:
            np.testing.assert_array_equal(raw, full.raw_beats)
        else:
            # the interpreter on the first n + 1 layers: same output buffer
            part = image.copy()
            part[0] = n + 1
            part[1 + n * DESCRIPTOR_WORDS:1 + (n + 1) * DESCRIPTOR_WORDS] = pack_descriptor(
                {**d, "last": 1})
            got = run_engine_image(part, x, fmt, seed=None).buffers[d["out_buf"]]
            np.testing.assert_array_equal(got, bufs[d["out_buf"]], err_msg=f"layer {n}")


def test_engine_cost_is_the_v1_loop():
    """``engine_cost``'s low-bit compute is ``NF·OH·OW·SF`` of the compiled descriptors."""
    from lowbit_hdl.cost import EngineConfig, engine_cost

    net = load_network("networks/cnv_w1a1.py")
    cost = engine_cost(net, EngineConfig(pe=16, simd=32))
    fmt = EngineFormat(pe=16, simd=32, act=BIPOLAR, acc_bits=13, buffer_words=2048,
                       max_sf=72, raw_bits=12)
    descs = engine_descriptors([i for i in net.infer()[1:] if i.layer.kind != "topk"], fmt)
    assert [c.name for c in cost.layers[1:]] == ["conv1", "conv2", "conv3", "conv4", "conv5",
                                                 "fc0", "fc1", "fc2"]
    assert [c.compute for c in cost.layers[1:]] == [
        d["nf"] * d["out_h"] * d["out_w"] * d["sf"] for d in descs]


def test_requirements():
    """engine_requirements gives the smallest format that compiles: one less of any size is
    a named error."""
    net = load_network("networks/cnv_w1a1.py")
    eng = [i for i in net.infer()[1:] if i.layer.kind != "topk"]
    req = engine_requirements(eng, 16, 32, BIPOLAR)
    # U of conv5 (sf = 9·8 = 72 beats of 32 lanes) reaches 2304: 12 bits for 2305; the
    # largest map is conv1's 30×30×64 (1800 words); fc2 accumulates ±512 (11 bits)
    assert req == {"acc_bits": 12, "buffer_words": 1800, "max_sf": 72, "raw_bits": 11}
    engine_descriptors(eng, EngineFormat(16, 32, BIPOLAR, **req))
    for key, rule in (("acc_bits", "acc_bits"), ("buffer_words", "buffer size"),
                      ("max_sf", "max_sf"), ("raw_bits", "raw_bits")):
        with pytest.raises(EngineLayerError, match=f"rule: {rule}"):
            engine_descriptors(eng, EngineFormat(16, 32, BIPOLAR, **{**req, key: req[key] - 1}))


@pytest.mark.parametrize("ports", [2, 4])
def test_ports_image_layout(ports):
    """An image for ``ports`` read masters: the same descriptors but for ``tile_words``
    (threshold words padded to whole beats of ``ports`` words), each region stored as
    ``ports`` sub-regions (word i of the stream in sub-region i mod ports, at position
    i div ports), the interpreter's results equal to the one-port image's (and golden)."""
    from lowbit_hdl.runtime.engine import (
        deinterleave_region,
        interleave_region,
        sub_region_bytes,
        tile_threshold_words,
    )

    a = UINT(2)
    net = Network("p", (16, 6, 6), [
        Conv("c0", 24, 3, padding=1, act=a), MaxPool("p0", 2),
        FC("f0", 20, act=a), FC("f1", 10, act=None),
    ], a)
    kw = dict(pe=8, simd=16, act=a, acc_bits=13, buffer_words=256, max_sf=64, raw_bits=16)
    if ports == 4:
        kw |= {"pe": 16}
    one = EngineFormat(**kw)
    fmt = EngineFormat(**kw, ports=ports)
    img1, d1, run1 = _check(net, one)
    img, d, run = _check(net, fmt)
    np.testing.assert_array_equal(run.output, run1.output)
    tw1 = tile_threshold_words(one.pe, a, 13)
    tw = tile_threshold_words(fmt.pe, a, 13, ports)
    assert tw % ports == 0 and tw1 <= tw < tw1 + ports
    for a1, b in zip(d1, d, strict=True):
        pad = 0 if b["raw"] else tw - tw1
        assert b["tile_words"] == a1["tile_words"] + pad and b["tile_words"] % ports == 0
        assert {k: v for k, v in a1.items() if k not in ("tile_words", "region")} == \
            {k: v for k, v in b.items() if k not in ("tile_words", "region")}
        n = b["nf"] * b["tile_words"]
        stored = img[b["region"] // 8:b["region"] // 8 + n]
        stream = deinterleave_region(stored, ports)
        np.testing.assert_array_equal(interleave_region(stream, ports), stored)
        sub = sub_region_bytes(b, ports) // 8
        for j in range(ports):  # sub-region j: stream words j, j + ports, …
            np.testing.assert_array_equal(stored[j * sub:(j + 1) * sub], stream[j::ports])
        # the stream minus the padding words is the one-port region
        s1 = img1[a1["region"] // 8:a1["region"] // 8 + a1["nf"] * a1["tile_words"]]
        keep = np.ones(n, bool).reshape(b["nf"], b["tile_words"])
        keep[:, tw1:tw1 + pad] = False
        assert not stream.reshape(b["nf"], -1)[:, tw1:tw1 + pad].any()
        np.testing.assert_array_equal(stream[keep.reshape(-1)], s1)
    with pytest.raises(ValueError, match="ports"):
        EngineFormat(**(kw | {"pe": 4}), ports=4)  # 4·16/64 = 1 word per beat
    with pytest.raises(ValueError):
        EngineFormat(**kw, ports=3)
    with pytest.raises(ValueError):
        interleave_region(np.zeros(5, np.uint64), 2)
