"""Stitching: a network's pipeline plan elaborated to one Amaranth top-level Component with
AXI-Stream ports.

Ports (Verilog names in brackets): ``s_axis`` slave [``s_axis__tdata``, ``s_axis__tvalid``,
``s_axis__tready``, ``s_axis__tlast``], ``m_axis`` master [``m_axis__…``], plus ``clk`` and
``rst`` (synchronous, active high). ``tdata`` widths and the element packing are those of the
plan's :class:`~lowbit_hdl.runtime.layout.StreamLayout` s (written to ``layout.json``).

* Input: the low ``elems·bits`` bits of ``s_axis__tdata`` are the beat's elements; padding
  bits and ``s_axis__tlast`` are ignored (frames are counted, not marked: any tlast pattern,
  e.g. one per DMA transfer, is accepted).
* Output: ``m_axis__tdata`` carries the elements in its low bits, zero-padded;
  ``m_axis__tlast`` is high on the last beat of every output frame.

Inside, the stages of :func:`lowbit_hdl.flow.plan.plan_network` are instantiated from
:mod:`lowbit_hdl.hw` and chained output to input with ready/valid streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from amaranth import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..ir import LayerInfo, Network
from .plan import Plan, Stage, StageKind, plan_network

__all__ = [
    "axis_signature",
    "NetworkTop",
    "StitchError",
    "default_library",
    "elaborate_verilog",
    "TOP_NAME",
]

#: Verilog module name of the generated top level (the Vivado wrapper instantiates it)
TOP_NAME = "lowbit_top"

Factory = Callable[[Stage, LayerInfo | None], Any]


class StitchError(RuntimeError):
    """A hardware module does not match the stage the plan needs (ports, widths)."""


def axis_signature(width: int) -> wiring.Signature:
    """AXI-Stream, master view: ``tdata``, ``tvalid``, ``tlast`` out, ``tready`` in."""
    return wiring.Signature({
        "tdata": Out(width),
        "tvalid": Out(1),
        "tready": In(1),
        "tlast": Out(1),
    })


def default_library() -> dict[StageKind, Factory]:
    """Stage kind → constructor, from the modules of :mod:`lowbit_hdl.hw`.

    Imported on first use so that planning and reporting work without them.
    """

    def mvtu(stage: Stage, info: LayerInfo | None):
        from ..hw.mvtu import MVTU

        return MVTU.from_layer(info)

    def swu(stage: Stage, info: LayerInfo | None):
        from ..hw.swu import SlidingWindow

        return SlidingWindow.from_layer(info)

    def maxpool(stage: Stage, info: LayerInfo | None):
        from ..hw.maxpool import MaxPoolUnit

        return MaxPoolUnit.from_layer(info)

    def topk(stage: Stage, info: LayerInfo | None):
        from ..hw.topk import TopKUnit

        return TopKUnit.from_layer(info)

    def fifo(stage: Stage, info: LayerInfo | None):
        from ..hw.fifo import StreamFIFO

        return StreamFIFO(stage.in_width, stage.depth, stage.ram_style)

    def dwc(stage: Stage, info: LayerInfo | None):
        from ..hw.dwc import WidthConverter

        return WidthConverter(stage.in_bits, stage.in_elems, stage.out_elems)

    return {StageKind.MVTU: mvtu, StageKind.SWU: swu, StageKind.POOL: maxpool,
            StageKind.TOPK: topk, StageKind.FIFO: fifo, StageKind.DWC: dwc}


def _port(mod: Any, name: str, stage: Stage) -> Any:
    port = getattr(mod, name, None)
    if port is None or not all(hasattr(port, f) for f in ("payload", "valid", "ready")):
        raise StitchError(f"stage {stage.name}: {type(mod).__name__} has no stream port "
                          f"`{name}` (payload/valid/ready) as docs/architecture.md requires")
    return port


class NetworkTop(wiring.Component):
    """The whole dataflow accelerator of a network, with AXI-Stream ports.

    ``plan`` defaults to :func:`plan_network` of ``net``; ``library`` maps stage kinds
    (:class:`~lowbit_hdl.flow.plan.StageKind`, or their names such as ``"fifo"``) to
    constructors (default: :func:`default_library`). Parameters (weights, thresholds) must be
    attached to ``net``.
    """

    def __init__(self, net: Network, plan: Plan | None = None, clock_mhz: float = 100.0,
                 library: Mapping[StageKind | str, Factory] | None = None) -> None:
        self.net = net
        self.plan = plan if plan is not None else plan_network(net, clock_mhz)
        lib = default_library() if library is None else library
        self.library = {StageKind(kind): make for kind, make in lib.items()}
        self.net.infer(check_params=True)
        super().__init__({
            "s_axis": In(axis_signature(self.plan.input.tdata_bits)),
            "m_axis": Out(axis_signature(self.plan.output.tdata_bits)),
        })

    def build_stages(self) -> list[tuple[Stage, Any]]:
        """Instantiate every stage and check its port widths against the plan."""
        infos = {i.name: i for i in self.plan.infos}
        out = []
        for st in self.plan.stages:
            make = self.library.get(st.kind)
            if make is None:
                raise StitchError(f"stage {st.name}: no module for kind {st.kind.value!r}")
            mod = make(st, infos.get(st.layer) if st.layer else None)
            i, o = _port(mod, "i", st), _port(mod, "o", st)
            wi, wo = len(Value.cast(i.payload)), len(Value.cast(o.payload))
            if wi != st.in_width or wo != st.out_width:
                raise StitchError(
                    f"stage {st.name}: {type(mod).__name__} has {wi}-bit input and "
                    f"{wo}-bit output payloads, the plan needs {st.in_width} "
                    f"({st.in_elems}×{st.in_bits}) and {st.out_width} "
                    f"({st.out_elems}×{st.out_bits})")
            out.append((st, mod))
        return out

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan
        stages = self.build_stages()
        for st, mod in stages:
            m.submodules[st.name] = mod

        # AXI-Stream input → first stage
        first = stages[0][1].i
        m.d.comb += [
            Value.cast(first.payload).eq(self.s_axis.tdata[:plan.input.elems_per_beat
                                               * plan.input.elem_bits]),
            first.valid.eq(self.s_axis.tvalid),
            self.s_axis.tready.eq(first.ready),
        ]
        # stage to stage
        for (_, a), (_, b) in zip(stages, stages[1:], strict=False):
            m.d.comb += [Value.cast(b.i.payload).eq(Value.cast(a.o.payload)),
                         b.i.valid.eq(a.o.valid), a.o.ready.eq(b.i.ready)]
        # last stage → AXI-Stream output, tlast from a beat counter
        last = stages[-1][1].o
        beats = plan.output.beats_per_frame
        count = Signal(range(max(2, beats)), name="out_beat")
        is_last = Signal(name="out_last")
        m.d.comb += [
            self.m_axis.tdata.eq(Value.cast(last.payload)),
            self.m_axis.tvalid.eq(last.valid),
            last.ready.eq(self.m_axis.tready),
            is_last.eq(count == beats - 1),
            self.m_axis.tlast.eq(is_last),
        ]
        with m.If(self.m_axis.tvalid & self.m_axis.tready):
            m.d.sync += count.eq(0 if beats == 1 else (count + 1))
            with m.If(is_last):
                m.d.sync += count.eq(0)
        return m


def elaborate_verilog(top: NetworkTop, name: str = TOP_NAME) -> str:
    """Verilog text of the top level (``clk``/``rst`` plus the AXI-Stream ports)."""
    from amaranth.back import verilog

    return verilog.convert(top, name=name, emit_src=False, strip_internal_attrs=True)
