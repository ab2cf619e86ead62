# amaranth: UnusedElaboratable=no
"""The engine's sequencer against cocotbext-axi's AxiRamRead and a fake datapath
(``sim/tb_engine_sequencer.py``): the descriptors and region words of a compiled engine image
(``lowbit_hdl.runtime.engine``) layer by layer over two frames under random AXI pauses and
latency, back-pressure and datapath delays; the exact gap between layers; a corrupted
descriptor, a SLVERR region, an inconsistent table and a descriptor the datapath rejects stop
it with their error codes (and a clean run follows); the descriptor layout."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from helpers import QUICK_SIM as SIM

from lowbit_hdl import cost
from lowbit_hdl.hw.engine.datapath import EngineDatapath
from lowbit_hdl.hw.engine.params import EngineParams, descriptor_layout
from lowbit_hdl.hw.engine.sequencer import EngineSequencer
from lowbit_hdl.ir import FC, Conv, MaxPool, Network
from lowbit_hdl.runtime import regs
from lowbit_hdl.runtime.dtypes import BIPOLAR, UINT
from lowbit_hdl.runtime.engine import (
    DESCRIPTOR_BITS,
    DESCRIPTOR_FIELDS,
    DESCRIPTOR_WORDS,
    EngineFormat,
    deinterleave_region,
    engine_image,
    pack_descriptor,
    read_descriptors,
    run_engine_image,
)
from lowbit_hdl.runtime.words import pack_word
from lowbit_hdl.sim.runner import to_verilog
from sim.units import simulate

needs_sim = pytest.mark.skipif(SIM is None, reason="no simulator (Verilator or Icarus)")

FMT = EngineFormat(pe=8, simd=8, act=UINT(2), acc_bits=12, buffer_words=256, max_sf=64,
                   raw_bits=16)
#: two read masters: 128-bit tile beats (pe·simd = 128 bits: 2 words per weight beat), the
#: thresholds padded from 5 to 6 words
FMT2 = EngineFormat(pe=8, simd=16, act=UINT(2), acc_bits=12, buffer_words=256, max_sf=64,
                    raw_bits=16, ports=2)
#: four read masters (the seed networks' HP ports): 256-bit tile beats, pe·simd = 256
FMT4 = EngineFormat(pe=16, simd=16, act=UINT(2), acc_bits=12, buffer_words=256, max_sf=64,
                    raw_bits=16, ports=4)


def _image(fmt: EngineFormat = FMT) -> np.ndarray:
    a = UINT(2)
    net = Network("seq", (12, 9, 9), [
        Conv("c0", 20, 3, padding=1, act=a), MaxPool("p0", 2),
        Conv("c1", 16, 3, stride=2, padding=1, act=a),
        FC("f0", 24, act=a), FC("f1", 10, act=None),
    ], a).randomize(1)
    return engine_image(net.infer(), fmt)


def _cfg_value(words: np.ndarray) -> int:
    v = sum(int(w) << (64 * i) for i, w in enumerate(words))
    return v & ((1 << DESCRIPTOR_BITS) - 1)


def _runs(image: np.ndarray, layers: list[int], zero_from: int | None = None,
          reject: dict[int, int] | None = None, ports: int = 1) -> list:
    """[cfg value, region beats, reject code] of the given layer indices of ``image``: the
    region's words in stream order, ``ports`` per beat (the first in the low bits)
    (``reject``: layer run → the fake datapath's error code)."""
    out = []
    descs = read_descriptors(image)
    for r, n in enumerate(layers):
        d = descs[n]
        w0 = d["region"] // 8
        words = [int(w) for w in deinterleave_region(
            image[w0:w0 + d["nf"] * d["tile_words"]], ports)]
        if zero_from is not None and d["region"] >= zero_from:
            words = [0] * len(words)
        words = [sum(w << (64 * j) for j, w in enumerate(words[i:i + ports]))
                 for i in range(0, len(words), ports)]
        out.append([_cfg_value(image[1 + n * DESCRIPTOR_WORDS:1 + (n + 1) * DESCRIPTOR_WORDS]),
                    words, (reject or {}).get(r, 0)])
    return out


def test_descriptor_layout():
    """The layout's fields and offsets are DESCRIPTOR_FIELDS, packed LSB first: a packed
    descriptor read through the layout gives its fields back."""
    lay = descriptor_layout()
    assert lay.size == DESCRIPTOR_BITS
    off = 0
    for name, bits in DESCRIPTOR_FIELDS:
        assert lay[name].offset == off and lay[name].shape.width == bits
        off += bits
    assert lay["acc_offset"].shape.signed
    d = read_descriptors(_image())[-1]
    const = data.Const(lay, _cfg_value(pack_descriptor(d)))
    assert {n: const[n] for n, _ in DESCRIPTOR_FIELDS} == d


def test_sequencer_params():
    """The datapath's EngineParams and the runtime's EngineFormat give the same sequencer."""
    with pytest.raises(TypeError):
        EngineSequencer("fmt")
    p = EngineParams(pe=8, simd=8, act=UINT(2), buffer_words=256, max_sf=64, acc_bits=12,
                     raw_bits=16)
    assert to_verilog(EngineSequencer(p), "s") == to_verilog(EngineSequencer(FMT), "s")


@needs_sim
@pytest.mark.parametrize("fmt", [FMT, FMT2, FMT4], ids=["ports1", "ports2", "ports4"])
def test_sequencer_cosim(fmt):
    image = _image(fmt)
    P = fmt.ports
    descs = read_descriptors(image)
    n = len(descs)
    a, b, c, dd, e = 0x1000, 0x10000, 0x20000, 0x30000, 0x3F000
    bad_sf = image.copy()  # layer 1's sf is not K·K·in_cf
    bad_sf[1 + DESCRIPTOR_WORDS:1 + 2 * DESCRIPTOR_WORDS] = pack_descriptor(
        {**descs[1], "sf": descs[1]["sf"] + 1})
    bad_count = image.copy()  # 5 layers announced, 4 in the table
    bad_count[0] = n + 1
    empty = np.zeros(1, dtype=np.uint64)  # 0 layers
    quiet = {"ar_pause": 0.0, "r_pause": 0.0, "delay": 0.0, "stall": 0.0, "done_delay": 0}
    noisy = {"ar_pause": 0.3, "r_pause": 0.3, "delay": 0.05, "stall": 0.3, "done_delay": 20}
    phases = [
        {**noisy, "base": a, "frames": 2,
         "layers": _runs(image, list(range(n)) * 2, ports=P), "error": 0},
        {**quiet, "base": a, "frames": 2,
         "layers": _runs(image, list(range(n)) * 2, ports=P),
         "error": 0, "check_cycles": True, "gap": cost.engine_descriptor_cycles(0),
         "region_latency": cost.engine_region_latency(0)},
        {**noisy, "base": b, "frames": 1, "layers": _runs(bad_sf, [0], ports=P),
         "error": regs.ERROR_ENGINE_DESCRIPTOR, "error_layer": 1},
        {**noisy, "base": c, "frames": 2, "bad_from": c + descs[1]["region"],
         "layers": _runs(image, [0, 1], zero_from=descs[1]["region"], ports=P),
         "error": regs.ERROR_AXI_SLVERR, "error_layer": 1},
        {**noisy, "base": dd, "frames": 1,
         "layers": _runs(bad_count, list(range(n - 1)), ports=P),
         "error": regs.ERROR_ENGINE_TABLE, "error_layer": n - 1},
        {**quiet, "base": e, "frames": 1, "layers": [], "error": regs.ERROR_ENGINE_TABLE,
         "error_layer": 0},
        # the datapath rejects layer 2 (code 7): the region is dropped, then error 16 + 7
        {**noisy, "base": a, "frames": 1,
         "layers": _runs(image, [0, 1, 2], reject={2: 7}, ports=P),
         "error": regs.ERROR_ENGINE_DATAPATH + 7, "error_layer": 2},
        {**noisy, "base": a, "frames": 1, "layers": _runs(image, list(range(n)), ports=P),
         "error": 0},
    ]
    images = [[base, [int(w) for w in img]]
              for base, img in ((a, image), (b, bad_sf), (c, image), (dd, bad_count),
                                (e, empty))]
    dut = EngineSequencer(fmt, max_burst=16, max_outstanding=4)
    simulate(dut, f"engine_sequencer_p{P}", "tb_engine_sequencer",
             {"mem_size": 1 << 18, "seed": 3, "ports": P, "images": images, "phases": phases},
             SIM, testcase="sequencer")


# -- the sequencer driving the real datapath --------------------------------------------------

class EngineSystem(wiring.Component):
    """Test wrapper: the sequencer driving the datapath (cfg, start, done, error, tiles,
    frame_free), the AXI port, the datapath's load, raw and drain streams outside."""

    def __init__(self, params: EngineParams) -> None:
        self.seq = EngineSequencer(params)
        self.dp = EngineDatapath(params)
        members = {n: self.seq.signature.members[n] for n in
                   ("base", "frames", "start", "frame_done", "done", "busy", "error",
                    "error_code", "m_axi")}
        for n in ("load", "raw", "drain"):
            if n in self.dp.signature.members:
                members[n] = self.dp.signature.members[n]
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        seq, dp = m.submodules.seq, m.submodules.dp = self.seq, self.dp
        for n in ("base", "frames", "start"):
            m.d.comb += getattr(seq, n).eq(getattr(self, n))
        for n in ("frame_done", "done", "busy", "error", "error_code"):
            m.d.comb += getattr(self, n).eq(getattr(seq, n))
        wiring.connect(m, wiring.flipped(self.m_axi), seq.m_axi)
        wiring.connect(m, seq.tiles, dp.tiles)
        m.d.comb += [dp.cfg.eq(seq.cfg), dp.start.eq(seq.layer_start),
                     seq.layer_done.eq(dp.done), seq.layer_error.eq(dp.error),
                     seq.frame_free.eq(dp.frame_free)]
        for n in ("load", "raw", "drain"):
            if n in self.dp.signature.members:
                wiring.connect(m, wiring.flipped(getattr(self, n)), getattr(dp, n))
        return m


def _system(net: Network, fmt: EngineFormat, frames: int, seed: int) -> tuple:
    """(EngineSystem, bench config) of ``net`` (all of it on the engine), ``frames`` random
    input maps; expected outputs from the interpreter."""
    net.randomize(seed)
    infos = net.infer()
    image = engine_image(infos, fmt)
    descs = read_descriptors(image)
    act = fmt.act
    c, h, w = net.input_shape
    last = descs[-1]
    params = EngineParams(fmt.pe, fmt.simd, act, fmt.buffer_words, fmt.max_sf, fmt.acc_bits,
                          fmt.raw_bits, load_shape=(h, w, c), load_elems=c,
                          drain_shape=None if last["raw"] else
                          (last["pool_h"], last["pool_w"], last["out_c"]))
    rng = np.random.default_rng(seed)
    cfg_frames = []
    for _ in range(frames):
        x = rng.integers(0, 1 << act.bits, (h, w, c))
        run = run_engine_image(image, x, fmt)
        fr = {"load": [pack_word(px.tolist(), act.bits) for px in x.reshape(h * w, c)]}
        if last["raw"]:
            fr["raw"] = [pack_word([int(v) & ((1 << fmt.raw_bits) - 1) for v in b],
                                   fmt.raw_bits) for b in run.raw_beats]
        else:
            n = params.map_words(params.drain_shape)
            fr["drain"] = [pack_word(wd.tolist(), act.bits)
                           for wd in run.buffers[last["out_buf"]][:n]]
        cfg_frames.append(fr)
    cfg = {"mem_size": 1 << 17, "seed": seed, "base": 0x3000,
           "image": [int(v) for v in image], "pause": 0.2, "stall": 0.2,
           "frames": cfg_frames}
    return EngineSystem(params), cfg


@needs_sim
@pytest.mark.parametrize("name", ["uint2_raw", "bipolar_drain"])
def test_engine_system_cosim(name):
    """A compiled image runs through sequencer + datapath from DDR, two frames: the raw
    beats (or the drained final map) equal the interpreter's."""
    if name == "uint2_raw":
        a = UINT(2)
        net = Network("sys", (4, 6, 6), [
            Conv("c0", 12, 3, padding=1, act=a), MaxPool("p0", 2),
            Conv("c1", 16, 3, stride=2, padding=1, act=a), FC("f1", 10, act=None)], a)
        fmt = EngineFormat(pe=8, simd=8, act=a, acc_bits=12, buffer_words=64, max_sf=32,
                           raw_bits=16)
    else:
        net = Network("sysb", (8, 6, 6), [
            Conv("c0", 16, 3, padding=1), MaxPool("p0", 3, 2, padding="same"),
            Conv("c1", 16, 1), FC("f1", 20)], BIPOLAR)
        fmt = EngineFormat(pe=16, simd=8, act=BIPOLAR, acc_bits=10, buffer_words=64,
                           max_sf=32)
    dut, cfg = _system(net, fmt, 2, 5)
    simulate(dut, f"engine_system_{name}", "tb_engine_system", cfg, SIM, testcase="system")
