"""Shared pieces of the test suite (fixtures are in ``conftest.py``).

* Small networks: :func:`tiny_fc_net`, :func:`small_cnn` (flow), :func:`tiny_net`,
  :func:`scores_net` (runtime) and their stream layouts and board files.
* Behavioural stand-ins for the stream FIFO and width converter (the contract of
  docs/architecture.md: flat payloads, ready/valid), to check that the stitcher takes any
  module library that keeps the contract.
* :class:`SumStandIn`, a small DUT with the generated top level's AXI-Stream ports, for
  exercising the simulated board's DMA framing independently of the hardware library: per
  input frame of ``in_beats`` beats it emits ``out_beats`` beats, beat ``j`` being
  ``(Σ of the frame's input beats mod 2**out_width) + j``, ``tlast`` on the last one; it does
  not overlap frames. Fault knobs: ``tlast_shift`` moves ``tlast``, ``extra_beats`` appends
  beats to every frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from amaranth import Module, Signal, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit_hdl import FC, UINT, Network, TopK
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime.layout import DesignLayout, StreamLayout
from lowbit_hdl.runtime.words import words_from_bytes, words_to_bytes
from lowbit_hdl.sim.fakepynq import FakeDevice, FakePynq, write_test_hwh
from lowbit_hdl.sim.runner import available_simulators

#: the simulators on this machine, and the one that compiles small designs fastest (Icarus
#: when present): the choice of the tests that run one simulator
SIMS = available_simulators()
QUICK_SIM = "icarus" if "icarus" in SIMS else (SIMS[0] if SIMS else None)


class FakeFIFO(wiring.Component):
    """Amaranth's SyncFIFOBuffered behind stream ports (depth ≥ 2)."""

    def __init__(self, width: int, depth: int, ram_style: str = "auto") -> None:
        self.width, self.depth = width, depth
        super().__init__({"i": In(stream.Signature(unsigned(width))),
                          "o": Out(stream.Signature(unsigned(width)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=self.width, depth=max(2, self.depth))
        m.d.comb += [q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid),
                     self.i.ready.eq(q.w_rdy),
                     self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy),
                     q.r_en.eq(self.o.ready)]
        return m


class FakeDWC(wiring.Component):
    """General a→b element gearbox with a buffer of a+b elements."""

    def __init__(self, elem_bits: int, in_elems: int, out_elems: int) -> None:
        self.w, self.a, self.b = elem_bits, in_elems, out_elems
        super().__init__({"i": In(stream.Signature(unsigned(elem_bits * in_elems))),
                          "o": Out(stream.Signature(unsigned(elem_bits * out_elems)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        w, a, b = self.w, self.a, self.b
        cap = a + b
        buf = Signal(cap * w)
        n = Signal(range(cap + 1))
        take = self.i.valid & self.i.ready
        give = self.o.valid & self.o.ready
        m.d.comb += [self.o.valid.eq(n >= b), self.o.payload.eq(buf[:b * w]),
                     self.i.ready.eq((n - b * give) + a <= cap)]
        after = Signal.like(buf)
        n_after = Signal.like(n)
        m.d.comb += [after.eq(buf), n_after.eq(n)]
        with m.If(give):
            m.d.comb += [after.eq(buf >> (b * w)), n_after.eq(n - b)]
        with m.If(take):
            m.d.sync += buf.eq(after | (self.i.payload << (n_after * w)))
        with m.Else():
            m.d.sync += buf.eq(after)
        m.d.sync += n.eq(n_after + a * take)
        return m


def fake_library(base: dict) -> dict:
    """``base`` (a stage-kind → constructor map) with the FIFO and DWC replaced by fakes."""
    out = dict(base)
    out["fifo"] = lambda st, info: FakeFIFO(st.in_width, st.depth, st.ram_style)
    out["dwc"] = lambda st, info: FakeDWC(st.in_bits, st.in_elems, st.out_elems)
    return out


def tiny_fc_net():
    """A small FC network (8-bit input, one FC→FC link with PE ≠ SIMD, raw output)."""
    from lowbit_hdl import BIPOLAR, FC, UINT, Network

    return Network("tiny_fc", (1, 4, 4), [
        FC("fc0", 8, act=BIPOLAR, pe=2, simd=4),
        FC("fc1", 12, act=UINT(2), pe=3, simd=2),
        FC("fc2", 4, act=None, pe=2, simd=6),
    ], UINT(2)).randomize(1)


def small_cnn(seed: int = 3):
    """conv (padding, INT2 weights, UINT2 act) → pool → conv → fc → top-1; widths differ
    between every pair of stages."""
    from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK

    return Network("small_cnn", (3, 8, 8), [
        Conv("c0", 8, 3, padding=1, pe=4, simd=3, weight_dtype=INT(2), act=UINT(2)),
        MaxPool("p0", 2),
        Conv("c1", 8, 3, pe=2, simd=8, act=BIPOLAR),
        FC("f0", 10, act=None, pe=5, simd=16),
        TopK("top", 1),
    ], UINT(8)).randomize(seed)


def tiny_net(seed: int = 0, k: int = 2) -> Network:
    """16 UINT8 pixels → FC 8 (bipolar) → FC 4 (raw) → top-k, labels a..d."""
    net = Network("tiny", (1, 4, 4), [FC("fc0", 8, pe=2, simd=4),
                                      FC("fc1", 4, act=None, pe=2, simd=4), TopK("top", k=k)],
                  UINT(8), labels=["a", "b", "c", "d"])
    return net.randomize(seed)


def tiny_layout(net: Network | None = None, in_elems: int = 4, in_bits: int = 32,
                **kw) -> DesignLayout:
    net = net if net is not None else tiny_net()
    k = net.layers[-1].k
    args = dict(network=net.name, input=StreamLayout(net.input_shape, "UINT8", in_elems,
                                                     in_bits),
                output=StreamLayout((k, 1, 1), "UINT2", 1, 8), clock_mhz=100.0,
                cycles_per_frame=16, labels=tuple(net.labels))
    args.update(kw)
    return DesignLayout(**args)


def board_files(folder: Path, layout: DesignLayout, name: str | None = None,
                **hwh) -> Path:
    """<name>.bit (dummy), <name>.hwh (one AXI DMA matching the layout), layout.json."""
    name = name or layout.network
    folder.mkdir(parents=True, exist_ok=True)
    bit = folder / f"{name}.bit"
    bit.write_bytes(b"\x00" * 16)
    args = dict(mm2s_tdata_bits=layout.input.tdata_bits,
                s2mm_tdata_bits=layout.output.tdata_bits)
    args.update(hwh)
    write_test_hwh(folder / f"{name}.hwh", **args)
    layout.save(folder / "layout.json")
    return bit


def golden_fake(net: Network, layout: DesignLayout, **kw) -> FakePynq:
    """A fake PYNQ whose device computes the golden model (tests the PYNQ code path only)."""
    dev = FakeDevice.from_layout(layout, lambda x: forward(net, x).output)
    return FakePynq(dev, **kw)


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4), dtype=np.uint8)


def hw_library() -> dict:
    """The build flow's module library (lowbit_hdl.hw)."""
    from lowbit_hdl.flow.top import default_library

    return default_library()


def scores_net(seed: int = 0) -> Network:
    """16 UINT8 pixels → FC 8 (bipolar) → FC 4 raw scores (no TopK), labels a..d."""
    return Network("tinys", (1, 4, 4), [FC("fc0", 8, pe=2, simd=4),
                                        FC("fc1", 4, act=None, pe=2, simd=4)],
                   UINT(8), labels=["a", "b", "c", "d"]).randomize(seed)


def axis(width: int) -> wiring.Signature:
    return wiring.Signature({"tdata": Out(width), "tvalid": Out(1), "tready": In(1),
                             "tlast": Out(1)})


class SumStandIn(wiring.Component):
    def __init__(self, in_width: int, out_width: int, in_beats: int, out_beats: int,
                 tlast_shift: int = 0, extra_beats: int = 0) -> None:
        self.in_width, self.out_width = in_width, out_width
        self.in_beats, self.out_beats = in_beats, out_beats
        self.tlast_shift, self.extra_beats = tlast_shift, extra_beats
        super().__init__({"s_axis": In(axis(in_width)), "m_axis": Out(axis(out_width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        acc = Signal(self.out_width)
        icount = Signal(range(self.in_beats + 1))
        total = self.out_beats + self.extra_beats
        ocount = Signal(range(total + 1))
        with m.FSM():
            with m.State("IN"):
                m.d.comb += self.s_axis.tready.eq(1)
                with m.If(self.s_axis.tvalid):
                    m.d.sync += [acc.eq(acc + self.s_axis.tdata[:self.out_width]),
                                 icount.eq(icount + 1)]
                    with m.If(icount == self.in_beats - 1):
                        m.d.sync += [icount.eq(0), ocount.eq(0)]
                        m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.m_axis.tvalid.eq(1),
                             self.m_axis.tdata.eq(acc + ocount),
                             self.m_axis.tlast.eq(
                                 ocount == self.out_beats - 1 + self.tlast_shift)]
                with m.If(self.m_axis.tready):
                    m.d.sync += ocount.eq(ocount + 1)
                    with m.If(ocount == total - 1):
                        m.d.sync += acc.eq(0)
                        m.next = "IN"
        return m

    def reference(self, packed: np.ndarray, in_beat_bytes: int, out_beat_bytes: int
                  ) -> np.ndarray:
        """Expected output bytes (N, out_beats·out_beat_bytes) for packed input frames."""
        mask = (1 << self.out_width) - 1
        out = []
        for frame in np.asarray(packed, np.uint8):
            acc = sum(b & mask for b in words_from_bytes(frame, in_beat_bytes)) & mask
            out.append(words_to_bytes(((acc + j) & mask for j in range(self.out_beats)),
                                      out_beat_bytes))
        return np.frombuffer(b"".join(out), np.uint8).reshape(len(out), -1)


#: the stream layout of the default :class:`SumStandIn`: 16 UINT8 pixels in 4 beats of 32 bits
#: in, 4 UINT8 "scores" out in 4 beats of 8 bits
STANDIN_LAYOUT = DesignLayout("standin", StreamLayout((1, 4, 4), "UINT8", 4, 32),
                              StreamLayout((4, 1, 1), "UINT8", 1, 8), 100.0, 8, None, "scores")


def standin(name: str = "standin", **kw):
    """A :class:`SumStandIn` (default: the shape of :data:`STANDIN_LAYOUT`, ``kw`` overrides)
    and its Verilog with top module ``name``."""
    from lowbit_hdl.sim.runner import to_verilog

    args = dict(in_width=32, out_width=8, in_beats=4, out_beats=4)
    args.update(kw)
    dut = SumStandIn(**args)
    return dut, to_verilog(dut, name)


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``python -m lowbit_hdl ARGS`` in-process: (exit status, stdout, stderr). Never a
    traceback; a failure is exit status 1 or 2 ending in one ``lowbit_hdl <cmd>: error: …``
    line."""
    from lowbit_hdl.cli import main

    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's usage errors
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    if rc:
        assert rc in (1, 2), err
        assert f"lowbit_hdl {args[0]}: error: " in err.strip().splitlines()[-1], err
    return rc, out, err
