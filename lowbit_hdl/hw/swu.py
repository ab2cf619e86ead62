"""Sliding-window unit (im2col generator) feeding a convolution's MVTU.

Input: one pixel of ``C`` channels in ``C/SIMD`` beats of ``SIMD`` elements, pixels in raster
order (H, W, C). Output: for every output pixel in raster order the im2col vector of
``K·K·C`` elements in [kh][kw][c] order, ``SIMD`` elements per beat — exactly the rows of
:func:`lowbit_hdl.golden.im2col` including padding.

Buffer
------
A circular buffer of ``R`` input rows, ``R·W·C/SIMD`` words of ``SIMD·elem_bits`` bits (one
simple dual-port RAM: one write and one read per cycle). Input row ``g`` (counted across
frames) lives in slot ``g mod R``. Padding is generated on the read side and never stored.

Control
-------
* The writer accepts input row ``g`` (in the reader's frame numbering) while
  ``g < lo + R``, ``lo`` being the oldest row the reader still needs (``oh·stride −
  padding`` of the output row being emitted, clamped to ``0 … H``); it may run one frame
  ahead of the reader, so frame ``n+1`` is read while frame ``n``'s last rows are emitted.
* The reader emits a beat when it is a pad beat or its pixel's channels were written (a
  lexicographic compare of (row, column, channel group) with the writer's position). It runs
  at one beat per cycle whenever the consumer is ready.
* ``R`` is the smallest row count for which this control sustains the contract rate, found
  with a cycle-exact model of the control (:func:`lowbit_hdl.cost.window_rows`, which the
  resource estimate uses too). Typically ``R = K`` for "same" padding at stride 1, ``2K − 1``
  rows without padding (the next frame's first ``K − 1`` rows are prefetched while the last
  output row is emitted), ``K + 1 … K + stride`` for stride > 1.
  ``rows=`` overrides it (at least ``min(K, H)``; fewer rows than the default cost throughput,
  never correctness).

Cycles
------
``cycles_per_frame = max(OH·OW·K²·C/SIMD, H·W·C/SIMD)`` in steady state (consumer always
ready, producer always valid); ``F`` back-to-back frames take ``F·cycles_per_frame + latency``
cycles from the first accepted input beat to the last output beat (``latency`` from the same
model; it is constant for ``F ≥ 2``, and may be negative when trailing input rows are not
used by any window).
"""

from __future__ import annotations

from functools import cached_property

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import WindowGeometry, window_cycles, window_rows, window_schedule
from ..ir import Conv, LayerInfo
from .params import check_choice, check_int
from .payload import vector
from .rom import RAM_STYLES

__all__ = ["SlidingWindow"]


class SlidingWindow(wiring.Component):
    """Sliding-window (im2col) generator for a K×K convolution with stride and padding.

    Parameters
    ----------
    in_shape : tuple of int
        (C, H, W) of the input feature map.
    kernel, stride, padding : int
        Window size K, stride and zero-free padding on every side (pad elements are
        ``pad_bits``, generated on the fly).
    pad_bits : int
        The *encoded* pad element (``in_dtype.encode(pad_value)``), e.g. 0 for BIPOLAR −1.
    simd : int
        Channels per beat (must divide C).
    elem_bits : int
        Bits per element; ``i`` and ``o`` payloads are ``ArrayLayout(unsigned(elem_bits),
        simd)`` of encoded elements (:func:`.payload.vector`).
    ram_style : str
        ``"auto"``, ``"block"`` or ``"distributed"`` (Xilinx ``ram_style`` of the buffer).
    rows : int or None
        Buffer rows ``R`` (default: the smallest that sustains the contract rate).

    Raises
    ------
    TypeError
        If a size is not an int or ``ram_style`` is not a str.
    ValueError
        If a value breaks a constraint (sizes, divisibility, kernel larger than the padded
        input, ``pad_bits`` range, ``ram_style``, ``rows``).

    Ports: ``i`` carries ``SIMD·elem_bits`` bits (one channel group of one pixel), ``o`` the
    same width (one channel group of one im2col vector). ``cycles_per_frame`` is
    ``max(OH·OW·K²·C/SIMD, H·W·C/SIMD)``; ``latency`` is the constant added for F ≥ 2
    back-to-back frames; ``buffer_bits`` is ``R·W·C·elem_bits``.
    """

    def __init__(self, in_shape: tuple[int, int, int], kernel: int, stride: int = 1,
                 padding: int = 0, pad_bits: int = 0, simd: int = 1, elem_bits: int = 1,
                 ram_style: str = "auto", rows: int | None = None) -> None:
        if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
            raise ValueError(f"in_shape={in_shape} must be (C, H, W) with every size ≥ 1")
        c, h, w = (check_int(n, v) for n, v in zip("CHW", in_shape, strict=True))
        kernel, stride = check_int("kernel", kernel), check_int("stride", stride)
        padding = check_int("padding", padding, 0)
        if kernel > h + 2 * padding or kernel > w + 2 * padding:
            raise ValueError(f"kernel {kernel}×{kernel} is larger than the padded input "
                             f"{h + 2 * padding}×{w + 2 * padding}")
        simd, elem_bits = check_int("SIMD", simd), check_int("elem_bits", elem_bits)
        if c % simd:
            raise ValueError(f"SIMD={simd} does not divide C={c}")
        pad_bits = check_int("pad_bits", pad_bits, 0)
        if pad_bits >= 1 << elem_bits:
            raise ValueError(f"pad_bits={pad_bits} does not fit in elem_bits={elem_bits} "
                             "(pass the encoded pad element)")
        check_choice("ram_style", ram_style, RAM_STYLES)
        self.in_shape = (c, h, w)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.pad_bits, self.simd, self.elem_bits = pad_bits, simd, elem_bits
        self.ram_style = ram_style
        self._g = WindowGeometry(h, w, c // simd, kernel, stride, padding)
        if rows is None:
            rows = window_rows(self._g)
        elif check_int("rows", rows) < min(kernel, h):
            raise ValueError(f"rows={rows} must be ≥ min(K, H) = {min(kernel, h)} (a window "
                             "needs that many input rows at once)")
        self.rows = rows
        self.out_shape = (kernel * kernel * c, self._g.oh, self._g.ow)
        layout = vector(elem_bits, simd)
        super().__init__({"i": In(stream.Signature(layout)),
                          "o": Out(stream.Signature(layout))})

    @classmethod
    def from_layer(cls, info: LayerInfo, rows: int | None = None) -> SlidingWindow:
        """The sliding window of a :class:`~lowbit_hdl.ir.Conv` layer (SIMD, pad, RAM style)."""
        lay = info.layer
        if not isinstance(lay, Conv):
            raise ValueError(f"layer {info.name}: SlidingWindow needs a Conv layer, got "
                             f"{type(lay).__name__}")
        pad_bits = int(info.in_dtype.encode(info.pad_value))
        return cls(info.in_shape, lay.kernel, lay.stride, lay.padding, pad_bits, lay.simd,
                   info.in_dtype.bits, lay.ram_style, rows)

    # -- figures ------------------------------------------------------------------------------

    @property
    def out_dims(self) -> tuple[int, int]:
        """(OH, OW)."""
        return self._g.oh, self._g.ow

    @property
    def in_beats(self) -> int:
        return self._g.in_beats

    @property
    def out_beats(self) -> int:
        return self._g.out_beats

    @property
    def cycles_per_frame(self) -> int:
        """``max(OH·OW·K²·C/SIMD, H·W·C/SIMD)`` (:func:`lowbit_hdl.cost.window_cycles`)."""
        return window_cycles(self._g)

    @property
    def depth(self) -> int:
        """Buffer words: ``R·W·C/SIMD``."""
        return self.rows * self._g.w * self._g.cs

    @property
    def buffer_bits(self) -> int:
        """Buffer size in bits: ``R·W·C·elem_bits``."""
        return self.depth * self.simd * self.elem_bits

    @cached_property
    def latency(self) -> int:
        """Cycles beyond ``F·cycles_per_frame`` from the first accepted input beat to the last
        output beat of F ≥ 2 back-to-back frames (no stalls); from
        :func:`lowbit_hdl.cost.window_schedule`.

        Constant for the default ``rows``; with fewer rows every frame takes a little longer
        than ``cycles_per_frame`` and this is the excess of three frames."""
        res = window_schedule(self._g, self.rows, 3)
        if res is None:  # pragma: no cover - rows ≥ min(K, H) never deadlocks
            raise RuntimeError("sliding-window schedule deadlocked")
        first, lasts = res
        return lasts[-1] - first - 3 * self.cycles_per_frame

    # -- hardware -----------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self._g
        h, w, cs, k, s, p = g.h, g.w, g.cs, g.k, g.s, g.p
        oh_n, ow_n = g.oh, g.ow
        r = self.rows
        wcs = w * cs
        depth = r * wcs
        layout = self.i.payload.shape()

        attrs = {} if self.ram_style == "auto" else {"ram_style": self.ram_style}
        m.submodules.buf = buf = memory.Memory(shape=layout, depth=depth, init=[], attrs=attrs)
        wp = buf.write_port()
        rp = buf.read_port(domain="sync")

        def modadd(x, c):
            """(x + c) mod depth for 0 ≤ x < depth and a constant 0 ≤ c < depth."""
            c %= depth
            y = x + c
            return Mux(y >= depth, y - depth, y)

        # ---- writer ---------------------------------------------------------------------------
        wr = Signal(range(h), name="w_row")
        wpos = Signal(range(wcs), name="w_pos")  # column·C/SIMD + channel group
        wbase = Signal(range(depth), name="w_base")  # slot · W·C/SIMD
        d = Signal(range(-1, 3), name="frames_ahead")  # frames written − frames read

        # ---- reader ---------------------------------------------------------------------------
        cg = Signal(range(cs), name="r_cg")
        kw = Signal(range(k), name="r_kw")
        kh = Signal(range(k), name="r_kh")
        ow = Signal(range(ow_n), name="r_ow")
        oh = Signal(range(oh_n), name="r_oh")
        row0 = Signal(range(-p, (oh_n - 1) * s - p + 1), name="r_row0", init=-p)
        col0 = Signal(range(-p, (ow_n - 1) * s - p + 1), name="r_col0", init=-p)
        row = Signal(range(-p, (oh_n - 1) * s - p + k), name="r_row", init=-p)
        col = Signal(range(-p, (ow_n - 1) * s - p + k), name="r_col", init=-p)
        cb_lo, cb_hi = -p * cs, ((ow_n - 1) * s - p + k) * cs + 1
        c0b = Signal(range(cb_lo, cb_hi), name="r_c0b", init=-p * cs)  # col0·C/SIMD
        cb = Signal(range(cb_lo, cb_hi), name="r_cb", init=-p * cs)  # col·C/SIMD
        fbase = Signal(range(depth), name="r_fbase")  # slot of the frame's row 0, ·W·C/SIMD
        r0_init = ((-p) % r) * wcs
        r0b = Signal(range(depth), name="r_r0b", init=r0_init)  # slot(row0)·W·C/SIMD
        rb = Signal(range(depth), name="r_rb", init=r0_init)  # slot(row)·W·C/SIMD

        # ---- writer: accept while the slot's previous row is no longer needed ----------------
        # oldest row still needed (rows past the frame: all padding; the next frame starts at H)
        lo = Mux(row0 < 0, 0, Mux(row0 > h, h, row0))
        d_rows = Signal(signed(max(row0.shape().width, (2 * h).bit_length() + 2) + 2))
        with m.Switch(d):
            for dv in (-1, 0, 1, 2):
                with m.Case(dv):
                    m.d.comb += d_rows.eq(dv * h)
        m.d.comb += self.i.ready.eq((d != 2) & (d_rows + wr < lo + r))
        w_fire = self.i.valid & self.i.ready
        w_pos_last = wpos == wcs - 1
        w_row_last = wr == h - 1
        w_done = w_fire & w_pos_last & w_row_last
        m.d.comb += [wp.addr.eq(wbase + wpos), wp.data.eq(self.i.payload), wp.en.eq(w_fire)]
        with m.If(w_fire):
            m.d.sync += wpos.eq(Mux(w_pos_last, 0, wpos + 1))
            with m.If(w_pos_last):
                m.d.sync += [wr.eq(Mux(w_row_last, 0, wr + 1)), wbase.eq(modadd(wbase, wcs))]

        # ---- reader: emit one beat per cycle when the data is there --------------------------
        pad = (row < 0) | (row >= h) | (col < 0) | (col >= w)
        cg_last, kw_last, kh_last = cg == cs - 1, kw == k - 1, kh == k - 1
        ow_last, oh_last = ow == ow_n - 1, oh == oh_n - 1
        last = cg_last & kw_last & kh_last & ow_last & oh_last
        written = (row < wr) | ((row == wr) & (cb + cg < wpos))
        avail = pad | (d >= 1) | ((d == 0) & written)
        adv = ~self.o.valid | self.o.ready
        issue = adv & avail & ~((d == -1) & last)
        r_done = issue & last

        m.d.comb += [rp.addr.eq((rb + cb + cg)[:len(rp.addr)]), rp.en.eq(adv)]
        pad_q = Signal(name="pad_q")
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(issue), pad_q.eq(pad)]
        pad_word = layout.const([self.pad_bits] * self.simd)
        m.d.comb += self.o.payload.eq(Mux(pad_q, pad_word, rp.data))

        # next values of the window origin when a window / output row / frame finishes
        row0_n = Signal.like(row0)
        r0b_n = Signal.like(r0b)
        col0_n = Signal.like(col0)
        c0b_n = Signal.like(c0b)
        fbase_n = Signal.like(fbase)
        m.d.comb += [row0_n.eq(row0), r0b_n.eq(r0b), col0_n.eq(col0), c0b_n.eq(c0b),
                     fbase_n.eq(fbase)]
        with m.If(kh_last):
            with m.If(ow_last):
                m.d.comb += [col0_n.eq(-p), c0b_n.eq(-p * cs)]
                with m.If(oh_last):
                    nf = modadd(fbase, (h % r) * wcs)
                    m.d.comb += [fbase_n.eq(nf), row0_n.eq(-p),
                                 r0b_n.eq(modadd(nf, ((-p) % r) * wcs))]
                with m.Else():
                    m.d.comb += [row0_n.eq(row0 + s), r0b_n.eq(modadd(r0b, (s % r) * wcs))]
            with m.Else():
                m.d.comb += [col0_n.eq(col0 + s), c0b_n.eq(c0b + s * cs)]

        with m.If(issue):
            m.d.sync += cg.eq(Mux(cg_last, 0, cg + 1))
            with m.If(cg_last):
                m.d.sync += kw.eq(Mux(kw_last, 0, kw + 1))
                with m.If(kw_last):
                    m.d.sync += [kh.eq(Mux(kh_last, 0, kh + 1)), col.eq(col0_n),
                                 cb.eq(c0b_n)]
                    with m.If(kh_last):
                        m.d.sync += [ow.eq(Mux(ow_last, 0, ow + 1)), row.eq(row0_n),
                                     rb.eq(r0b_n), row0.eq(row0_n), r0b.eq(r0b_n),
                                     col0.eq(col0_n), c0b.eq(c0b_n), fbase.eq(fbase_n)]
                        with m.If(ow_last):
                            m.d.sync += oh.eq(Mux(oh_last, 0, oh + 1))
                    with m.Else():
                        m.d.sync += [row.eq(row + 1), rb.eq(modadd(rb, wcs))]
                with m.Else():
                    m.d.sync += [col.eq(col + 1), cb.eq(cb + cs)]

        m.d.sync += d.eq(d + w_done - r_done)
        return m
