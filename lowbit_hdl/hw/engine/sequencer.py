"""The engine's sequencer: reads the descriptor table and the layers' tile regions from DDR
(the image of :func:`lowbit_hdl.runtime.engine.engine_image`) through ``ports``
:class:`~lowbit_hdl.hw.axi.AXI4ReadMaster` s (one per HP port; the descriptors through
master 0) and drives the datapath layer after layer.

A run (``start``, ``frames`` frames; ``frames = 0`` ends at once): for every frame it waits
for a ``frame_free`` pulse (the datapath can start a frame's first layer, which overlaps the
loading of the frame's input map; pulses are counted, none is lost), reads the layer count
(image word 0), then for each layer:

1. reads the layer's :data:`~lowbit_hdl.runtime.engine.DESCRIPTOR_WORDS` words and checks
   them (the checks of :func:`lowbit_hdl.runtime.engine.check_descriptor`, plus the table:
   ``last`` exactly on layer ``count − 1``, ``region`` 8-byte aligned);
2. presents the descriptor on ``cfg`` (held until the next layer's check) and pulses
   ``layer_start`` (``cfg`` is valid in the same cycle);
3. streams the layer's region, ``nf · tile_words`` words, to ``tiles`` in beats of ``ports``
   words: master ``j`` reads sub-region ``j`` (``nf·tile_words/ports`` words from
   ``base + region + j·``:func:`~lowbit_hdl.runtime.engine.sub_region_bytes`, the layout of
   :func:`~lowbit_hdl.runtime.engine.interleave_region`) and a beat is one word of each
   master (master ``j`` in bits ``[64j, 64j + 64)``), valid when all have one;
4. waits for ``layer_done`` (a pulse at any time after ``layer_start`` counts, also while the
   region still streams); after the ``last`` layer it pulses ``frame_done``.

After the last frame, or on an error, it pulses ``done`` and goes idle. Errors (``error``
high, ``error_code`` one of :data:`lowbit_hdl.runtime.regs.ERROR_CODES`, both held until the
next ``start``): an AXI error response (2 SLVERR, 3 DECERR) while reading the table or a
descriptor stops before the layer starts; one while streaming a region lets the layer finish
(the datapath gets every word and does not hang) and stops after its ``layer_done``; a
descriptor failing a check stops with ``ERROR_ENGINE_DESCRIPTOR`` (its layer on ``layer``),
a bad table (0 layers, ``last`` missing or early) with ``ERROR_ENGINE_TABLE``. ``layer_start``
is never pulsed for a rejected descriptor. Should the datapath reject a descriptor all the
same (its ``layer_error`` with ``layer_done``), the sequencer reads the rest of the region and
drops it, then stops with ``ERROR_ENGINE_DATAPATH +`` the datapath's code.

Cycles: with a memory of latency ``L`` (address handshake to first beat) answering one beat
per cycle, a layer's ``layer_start`` follows the previous layer's ``layer_done`` (or the
frame's count word) after :func:`lowbit_hdl.cost.engine_descriptor_cycles` cycles; the
region's first beat comes :func:`lowbit_hdl.cost.engine_region_latency` cycles after
``layer_start`` and then a beat per cycle as long as the consumer takes it and the memories
keep up (both measured by the bench). :func:`lowbit_hdl.cost.engine_layer_cycles` has the
first tile word at ``ENGINE_TILE_START``, so behind this sequencer a layer should take
``engine_region_latency − ENGINE_TILE_START`` cycles more (derived, not measured: the bench
has a fake datapath).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...runtime import regs
from ...runtime.engine import (
    DESCRIPTOR_BITS,
    DESCRIPTOR_WORDS,
    IMAGE_WORD_BITS,
    EngineFormat,
    tile_threshold_words,
)
from ..axi import AXI4ReadMaster, axi4_read_signature
from .params import EngineParams, descriptor_layout

__all__ = ["EngineSequencer"]

WORD_BYTES = IMAGE_WORD_BITS // 8


class EngineSequencer(wiring.Component):
    """Descriptor-driven control of the engine's datapath (module docstring).

    Parameters
    ----------
    fmt : EngineParams or EngineFormat
        The datapath's build parameters (the descriptor checks use ``pe``, ``simd``,
        ``act``, ``acc_bits``, ``max_sf``, ``buffer_words``, ``raw_bits``).
    addr_width : int
        AXI address bits.
    max_burst, max_outstanding : int
        Passed to each :class:`~lowbit_hdl.hw.axi.AXI4ReadMaster` (64-bit data).

    Attributes
    ----------
    base : In(addr_width)
        Byte address of the image (the control block's WEIGHTS_BASE), read at ``start``.
    frames : In(32)
        Frames of the run, read at ``start``.
    start : In(1)
        One-cycle pulse: begin a run (ignored while busy).
    frame_free : In(1)
        One-cycle pulse per frame the datapath can take (after reset, after each frame and
        after an abort).
    cfg : Out(descriptor_layout())
        The current layer's descriptor.
    layer_start : Out(1)
        One-cycle pulse: the datapath starts the layer on ``cfg``.
    layer_done : In(1)
        One-cycle pulse from the datapath: the layer's last write has landed.
    layer_error : In(4)
        The datapath's descriptor check, read with ``layer_done`` (0: the layer ran; else it
        rejected the descriptor, :data:`lowbit_hdl.runtime.engine.DATAPATH_ERRORS`).
    tiles : Out(stream.Signature(64·ports))
        The current layer's region words, in order, ``ports`` per beat.
    frame_done, done : Out(1)
        Pulses: a frame's last layer is done; the run has ended (all frames, or an error).
    busy : Out(1)
        A run is in progress.
    error : Out(1)
        The run stopped on an error (until the next ``start``).
    error_code : Out(8)
        The error (:data:`lowbit_hdl.runtime.regs.ERROR_CODES`), 0 without one.
    layer : Out(16)
        Index of the current (or failing) layer.
    bytes_read : Out(32)
        Bytes read from DDR since ``start`` (all masters).
    m_axi : Out(axi4_read_signature(addr_width, 64))
        AXI4 read channels of master 0 (descriptors and sub-region 0).
    m_axi1, m_axi2, m_axi3 : Out(axi4_read_signature(addr_width, 64))
        Those of masters 1 … ``ports − 1`` (only when ``ports > 1``; :meth:`axi_names`).

    Raises
    ------
    TypeError
        If ``fmt`` is neither EngineParams nor EngineFormat, or a width not an int.
    ValueError
        If a width is out of range.
    """

    def __init__(self, fmt: EngineParams | EngineFormat, addr_width: int = 32,
                 max_burst: int = 16, max_outstanding: int = 4) -> None:
        if not isinstance(fmt, (EngineParams, EngineFormat)):
            raise TypeError(f"fmt must be EngineParams or an EngineFormat, got "
                            f"{type(fmt).__name__}")
        self.fmt = fmt
        self.addr_width = addr_width
        self.ports = fmt.ports
        self.masters = [AXI4ReadMaster(IMAGE_WORD_BITS, addr_width, max_burst, max_outstanding)
                        for _ in range(fmt.ports)]
        self.master = self.masters[0]
        super().__init__({
            "base": In(addr_width),
            "frames": In(32),
            "start": In(1),
            "frame_free": In(1),
            "cfg": Out(descriptor_layout()),
            "layer_start": Out(1),
            "layer_done": In(1),
            "layer_error": In(4),
            "tiles": Out(stream.Signature(IMAGE_WORD_BITS * fmt.ports)),
            "frame_done": Out(1),
            "done": Out(1),
            "busy": Out(1),
            "error": Out(1),
            "error_code": Out(8),
            "layer": Out(16),
            "bytes_read": Out(32),
            **{name: Out(axi4_read_signature(addr_width, IMAGE_WORD_BITS))
               for name in self.axi_names(fmt.ports)},
        })

    @staticmethod
    def axi_names(ports: int) -> list[str]:
        """The members of the AXI4 read masters, master 0 first: ``m_axi``, ``m_axi1``, …"""
        return ["m_axi"] + [f"m_axi{j}" for j in range(1, ports)]

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = self.fmt
        ports = self.ports
        master = self.master
        for j, (name, mj) in enumerate(zip(self.axi_names(ports), self.masters, strict=True)):
            m.submodules["master" if j == 0 else f"master{j}"] = mj
            wiring.connect(m, wiring.flipped(getattr(self, name)), mj.m_axi)
        m.d.comb += self.bytes_read.eq(sum(mj.bytes_read for mj in self.masters))
        # any master's error, the code of the first failing one
        any_error = Cat(*(mj.error for mj in self.masters)).any()
        first_code = Signal(2)
        for mj in reversed(self.masters):
            with m.If(mj.error):
                m.d.comb += first_code.eq(mj.error_code)

        base = Signal(self.addr_width)
        desc_addr = Signal(self.addr_width)
        frames_left = Signal(32)
        loads = Signal(8)  # frame_free pulses not yet consumed
        count = Signal(16)
        words = Signal(range(DESCRIPTOR_WORDS + 1))
        dbuf = Signal(DESCRIPTOR_WORDS * IMAGE_WORD_BITS)
        desc = descriptor_layout()(dbuf[:DESCRIPTOR_BITS])
        left = Signal(32)  # region beats still to stream
        sub_bytes = Signal(self.addr_width)  # bytes between the sub-regions
        issued = Signal(ports)  # region commands accepted
        done_seen = Signal()
        rejected = Signal(4)  # the datapath's error code with layer_done (0: ran)
        # products of the checks, registered (CHECK1 → CHECK2)
        kkcf = Signal(24)
        in_words = Signal(32)
        out_words = Signal(32)
        region_words = Signal(32)
        want_tw = Signal(32)

        consume = Signal()
        with m.If(self.frame_free & ~consume):
            m.d.sync += loads.eq(loads + 1)
        with m.Elif(consume & ~self.frame_free):
            m.d.sync += loads.eq(loads - 1)

        m.d.sync += [self.layer_start.eq(0), self.frame_done.eq(0), self.done.eq(0)]
        cmd = master.cmd
        beat_words = fmt.pe * fmt.simd // IMAGE_WORD_BITS
        t_words = tile_threshold_words(fmt.pe, fmt.act, fmt.acc_bits, ports)
        shift = ports.bit_length() - 1  # ports is 1, 2 or 4

        def fail(code: int) -> None:
            m.d.sync += [self.error.eq(1), self.error_code.eq(code), self.done.eq(1)]
            m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.comb += [mj.clear.eq(1) for mj in self.masters]
                    m.d.sync += [base.eq(self.base), frames_left.eq(self.frames),
                                 self.error.eq(0), self.error_code.eq(0)]
                    with m.If(self.frames == 0):
                        m.d.sync += self.done.eq(1)
                    with m.Else():
                        m.next = "WAIT_LOAD"
            with m.State("WAIT_LOAD"):
                m.d.comb += self.busy.eq(1)
                with m.If(loads != 0):
                    m.d.comb += consume.eq(1)
                    m.d.sync += [self.layer.eq(0), desc_addr.eq(base + WORD_BYTES)]
                    m.next = "CMD_COUNT"
            with m.State("CMD_COUNT"):
                m.d.comb += [self.busy.eq(1), cmd.valid.eq(1), cmd.payload.addr.eq(base),
                             cmd.payload.beats.eq(1)]
                with m.If(cmd.ready):
                    m.next = "GET_COUNT"
            with m.State("GET_COUNT"):
                m.d.comb += [self.busy.eq(1), master.o.ready.eq(1)]
                with m.If(master.o.valid):
                    m.d.sync += count.eq(master.o.payload[:16])
                    with m.If(master.error):
                        fail(master.error_code)
                    with m.Elif((master.o.payload[:16] == 0) | (master.o.payload[16:] != 0)):
                        fail(regs.ERROR_ENGINE_TABLE)
                    with m.Else():
                        m.next = "CMD_DESC"
            with m.State("CMD_DESC"):
                m.d.comb += [self.busy.eq(1), cmd.valid.eq(1), cmd.payload.addr.eq(desc_addr),
                             cmd.payload.beats.eq(DESCRIPTOR_WORDS)]
                with m.If(cmd.ready):
                    m.d.sync += words.eq(0)
                    m.next = "GET_DESC"
            with m.State("GET_DESC"):
                m.d.comb += [self.busy.eq(1), master.o.ready.eq(1)]
                with m.If(master.o.valid):
                    # shift in from the top: word 0 ends in the lowest bits
                    m.d.sync += [dbuf.eq(Cat(dbuf[IMAGE_WORD_BITS:], master.o.payload)),
                                 words.eq(words + 1)]
                    with m.If(words == DESCRIPTOR_WORDS - 1):
                        m.next = "CHECK1"
            with m.State("CHECK1"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [
                    kkcf.eq(desc.k * desc.k * desc.in_cf),
                    in_words.eq(desc.in_h * desc.in_w * desc.in_cf),
                    out_words.eq(desc.pool_h * desc.pool_w * desc.out_cf),
                    region_words.eq(desc.nf * desc.tile_words),
                    want_tw.eq(Mux(desc.raw, 0, t_words) + desc.sf * beat_words),
                ]
                m.next = "CHECK2"
            with m.State("CHECK2"):
                m.d.comb += self.busy.eq(1)
                zero = (desc.sf == 0) | (desc.nf == 0) | (desc.k == 0) | (desc.stride == 0) | \
                    (desc.pool_k == 0) | (desc.pool_s == 0) | (desc.in_h == 0) | \
                    (desc.in_w == 0) | (desc.in_cf == 0) | (desc.out_c == 0) | \
                    (desc.out_h == 0) | (desc.out_w == 0) | (desc.pool_h == 0) | \
                    (desc.pool_w == 0) | (desc.out_cf == 0)
                bad = zero | (~desc.raw & (desc.in_buf == desc.out_buf)) | \
                    (desc.sf > fmt.max_sf) | (desc.sf != kkcf) | (desc.tile_words != want_tw) | \
                    (in_words > fmt.buffer_words) | \
                    (~desc.raw & (out_words > fmt.buffer_words)) | \
                    (desc.region[:3] != 0) | (desc.nf * fmt.pe < desc.out_c) | \
                    (desc.out_cf * fmt.simd < desc.out_c)
                if fmt.raw_bits == 0:
                    bad = bad | desc.raw
                last_here = self.layer == count - 1
                with m.If(master.error):
                    fail(master.error_code)
                with m.Elif(desc.last != last_here):
                    fail(regs.ERROR_ENGINE_TABLE)
                with m.Elif(bad):
                    fail(regs.ERROR_ENGINE_DESCRIPTOR)
                with m.Else():
                    m.d.sync += [self.cfg.eq(desc), self.layer_start.eq(1),
                                 done_seen.eq(0), rejected.eq(0), left.eq(region_words >> shift),
                                 sub_bytes.eq((region_words >> shift) * WORD_BYTES),
                                 issued.eq(0)]
                    m.next = "CMD_REGION"
            with m.State("CMD_REGION"):
                m.d.comb += self.busy.eq(1)
                accepted = Signal(ports)
                for j, mj in enumerate(self.masters):
                    m.d.comb += [mj.cmd.valid.eq(~issued[j]),
                                 mj.cmd.payload.addr.eq(base + self.cfg.region + j * sub_bytes),
                                 mj.cmd.payload.beats.eq(left),
                                 accepted[j].eq(issued[j] | mj.cmd.ready)]
                m.d.sync += issued.eq(accepted)
                with m.If(self.layer_done):
                    m.d.sync += [done_seen.eq(1), rejected.eq(self.layer_error)]
                with m.If(accepted.all()):
                    m.next = "STREAM"
            with m.State("STREAM"):
                # a beat is a word of each master; after a rejection the region's beats are
                # read and dropped (the masters deliver every word of a command; none may
                # stay for the next run)
                drop = rejected != 0
                all_valid = Cat(*(mj.o.valid for mj in self.masters)).all()
                m.d.comb += [self.busy.eq(1), self.tiles.valid.eq(all_valid & ~drop),
                             self.tiles.payload.eq(Cat(*(mj.o.payload for mj in self.masters)))]
                m.d.comb += [mj.o.ready.eq((self.tiles.ready | drop) & all_valid)
                             for mj in self.masters]
                with m.If(self.layer_done):
                    m.d.sync += [done_seen.eq(1), rejected.eq(self.layer_error)]
                with m.If(all_valid & (self.tiles.ready | drop)):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "WAIT_DONE"
            with m.State("WAIT_DONE"):
                m.d.comb += self.busy.eq(1)
                with m.If(done_seen | self.layer_done):
                    m.d.sync += done_seen.eq(0)
                    code = Mux(done_seen, rejected, self.layer_error)
                    with m.If(code != 0):
                        fail(regs.ERROR_ENGINE_DATAPATH + code)
                    with m.Elif(any_error):
                        fail(first_code)
                    with m.Elif(self.cfg.last):
                        m.d.sync += [self.frame_done.eq(1), frames_left.eq(frames_left - 1)]
                        with m.If(frames_left == 1):
                            m.d.sync += self.done.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "WAIT_LOAD"
                    with m.Else():
                        m.d.sync += [self.layer.eq(self.layer + 1),
                                     desc_addr.eq(desc_addr + DESCRIPTOR_WORDS * WORD_BYTES)]
                        m.next = "CMD_DESC"
        return m
