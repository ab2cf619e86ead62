# amaranth: UnusedElaboratable=no
"""The engine's sequencer against cocotbext-axi's AxiRamRead and a fake datapath
(``sim/tb_engine_sequencer.py``): the descriptors and region words of a compiled engine image
(``lowbit_hdl.runtime.engine``) layer by layer over two frames under random AXI pauses and
latency, back-pressure and datapath delays; the exact gap between layers; a corrupted
descriptor, a SLVERR region and an inconsistent table stop it with their error codes; the
descriptor layout."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.lib import data

from lowbit_hdl import cost
from lowbit_hdl.hw.engine.params import EngineParams, descriptor_layout
from lowbit_hdl.hw.engine.sequencer import EngineSequencer
from lowbit_hdl.ir import FC, Conv, MaxPool, Network
from lowbit_hdl.runtime import regs
from lowbit_hdl.runtime.dtypes import UINT
from lowbit_hdl.runtime.engine import (
    DESCRIPTOR_BITS,
    DESCRIPTOR_FIELDS,
    DESCRIPTOR_WORDS,
    EngineFormat,
    deinterleave_region,
    engine_image,
    pack_descriptor,
    read_descriptors,
)
from lowbit_hdl.sim.runner import available_simulators, to_verilog
from sim.units import simulate

SIMS = available_simulators()
SIM = "icarus" if "icarus" in SIMS else (SIMS[0] if SIMS else None)
needs_sim = pytest.mark.skipif(SIM is None, reason="no simulator (Verilator or Icarus)")

FMT = EngineFormat(pe=8, simd=8, act=UINT(2), acc_bits=12, buffer_words=256, max_sf=64,
                   raw_bits=16)
#: two read masters: 128-bit tile beats (pe·simd = 128 bits: 2 words per weight beat), the
#: thresholds padded from 5 to 6 words
FMT2 = EngineFormat(pe=8, simd=16, act=UINT(2), acc_bits=12, buffer_words=256, max_sf=64,
                    raw_bits=16, ports=2)


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
          ports: int = 1) -> list:
    """[cfg value, region beats] of the given layer indices of ``image``: the region's
    words in stream order, ``ports`` per beat (the first in the low bits)."""
    out = []
    descs = read_descriptors(image)
    for n in layers:
        d = descs[n]
        w0 = d["region"] // 8
        words = [int(w) for w in deinterleave_region(
            image[w0:w0 + d["nf"] * d["tile_words"]], ports)]
        if zero_from is not None and d["region"] >= zero_from:
            words = [0] * len(words)
        words = [sum(w << (64 * j) for j, w in enumerate(words[i:i + ports]))
                 for i in range(0, len(words), ports)]
        out.append([_cfg_value(image[1 + n * DESCRIPTOR_WORDS:1 + (n + 1) * DESCRIPTOR_WORDS]),
                    words])
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
@pytest.mark.parametrize("fmt", [FMT, FMT2], ids=["ports1", "ports2"])
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
