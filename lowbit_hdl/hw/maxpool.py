"""Streaming k×k max-pool with stride (windows may overlap) and padding, PE channels per beat.

Input: ``PE`` channels of one pixel per beat, raster order (H, W, C/PE beats per pixel).
Output: ``PE`` channels of one pooled pixel per beat, raster order. Pooled pixels are those of
the golden model's floor formula ``OH = (H + top + bottom − k)//s + 1``; input rows/columns
beyond the last window are read and dropped.

Padding (top, bottom, left, right; e.g. "same", :func:`lowbit_hdl.ir.pool_padding`) holds
the input type's minimum, which never wins a max, so it is generated on the fly and never
stored: a window is clipped to its real pixels (the window tables below know where each
window starts and ends), and it completes at its last real pixel. Where the last two windows
of a row (column) would both end in the bottom (right) padding and so complete at the same
pixel, the unit steps through the first ``E`` padded positions after the row (the frame)
as extra cycles that accept no input and feed the pad value (all-zero bits: −1 for BIPOLAR,
0 for UINT), so that every window completes at a step of its own
(:func:`lowbit_hdl.cost.pool_extra`; e.g. Tiny-YOLO's 2×2 stride-1 "same" pool steps
through one extra column per row and one extra row per frame).

The max is separable: a horizontal stage keeps, for the ``⌈k/s⌉`` output columns a pixel can
belong to, the running max over the window's columns (``⌈k/s⌉ × C`` elements); when a
column window completes, its result updates the vertical stage, which keeps the running max
over the window's rows for the ``⌈k/s⌉`` output rows an input row can belong to
(``⌈k/s⌉ × OW × C`` elements). Both are read-modify-written in the accepting cycle
(distributed RAM with asynchronous read). BIPOLAR max is the OR of the bits (+1 = 1), UINT
max an unsigned compare.

Cycles per frame: ``(H + E_h)·(W + E_w)·C/PE`` (one input beat or one generated padded
position per cycle, ``i.ready`` is registered; ``H·W·C/PE`` without such padding). A pooled
pixel's beat is on the output one cycle after the step (input beat or generated position)
that completes it.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import pool_cycles, pool_extra
from ..ir import LayerInfo, MaxPool, pool_out_size
from ..runtime.dtypes import BIPOLAR, DataType
from .params import check_dtype, check_int
from .payload import vector
from .skid import SkidBuffer

__all__ = ["MaxPoolUnit"]


def _windows(n: int, k: int, s: int, slots: int, before: int, after: int, extra: int
             ) -> list[list[tuple[bool, bool, bool]]]:
    """For every step position (``n`` pixels, then ``extra`` generated padded ones), per
    slot: (active, first, last) of the window in that slot, clipped to those positions."""
    out_n = pool_out_size(n, k, s, before, after)
    table = [[(False, False, False)] * slots for _ in range(n + extra)]
    for o in range(out_n):
        lo = max(o * s - before, 0)
        hi = min(o * s - before + k - 1, n + extra - 1)
        for pos in range(lo, hi + 1):
            table[pos][o % slots] = (True, pos == lo, pos == hi)
    return table


class MaxPoolUnit(wiring.Component):
    """k×k max-pool, stride ``s`` (default k), padding, ``pe`` channels per beat, BIPOLAR
    or UINT.

    ``cycles_per_frame`` is ``(H + E_h)·(W + E_w)·C/PE`` (``E``: generated padded rows and
    columns, :attr:`extra`; ``H·W·C/PE`` without padding); ``buffer_bits`` is
    ``⌈k/s⌉·(OW + 1)·C·bits``.

    Parameters
    ----------
    in_shape : tuple of int
        (C, H, W) of the input feature map.
    kernel : int
        Window size k.
    stride : int or None
        Stride s (default k; ``s < k`` overlaps windows).
    pe : int
        Channels per beat (must divide C).
    dtype : DataType or None
        BIPOLAR (default) or UINTk.
    pads : tuple of int
        Padding (top, bottom, left, right), each below ``kernel`` (default none);
        ``LayerInfo.pads`` of a :class:`~lowbit_hdl.ir.MaxPool` layer.

    Attributes
    ----------
    i, o : In/Out(stream.Signature(ArrayLayout(unsigned(dtype.bits), pe)))
        ``pe`` channels of one input pixel / one pooled pixel.

    Raises
    ------
    TypeError
        If a size is not an int or ``dtype`` is not a DataType.
    ValueError
        If a value breaks a constraint (sizes, divisibility, window larger than the padded
        input, padding not below the kernel, INTk ``dtype``).
    """

    def __init__(self, in_shape: tuple[int, int, int], kernel: int = 2,
                 stride: int | None = None, pe: int = 1, dtype: DataType | None = None,
                 pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
        dtype = BIPOLAR if dtype is None else check_dtype("dtype", dtype)
        kernel = check_int("kernel", kernel)
        stride = kernel if stride is None else check_int("stride", stride)
        pe = check_int("PE", pe)
        if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
            raise ValueError(f"in_shape={in_shape} must be (C, H, W) with every size ≥ 1")
        c, h, w = (check_int(n, v) for n, v in zip("CHW", in_shape, strict=True))
        if not isinstance(pads, (tuple, list)) or len(pads) != 4:
            raise ValueError(f"pads={pads!r} must be (top, bottom, left, right)")
        pt, pb, pl, pr = (check_int(n, v, 0) for n, v in
                          zip(("top pad", "bottom pad", "left pad", "right pad"), pads,
                              strict=True))
        if max(pt, pb, pl, pr) >= kernel:
            raise ValueError(f"pads={tuple(pads)}: each side must be below the kernel {kernel}")
        if kernel > h + pt + pb or kernel > w + pl + pr:
            raise ValueError(f"kernel {kernel}×{kernel} is larger than the "
                             f"{'padded ' if pt + pb + pl + pr else ''}input "
                             f"{h + pt + pb}×{w + pl + pr}")
        if c % pe:
            raise ValueError(f"PE={pe} does not divide C={c}")
        if dtype.kind not in ("bipolar", "uint"):
            raise ValueError(f"dtype={dtype} is not supported (BIPOLAR or UINTk)")
        self.in_shape = (c, h, w)
        self.kernel, self.stride, self.pe, self.dtype = kernel, stride, pe, dtype
        self.pads = (pt, pb, pl, pr)
        self.out_dims = (pool_out_size(h, kernel, stride, pt, pb),
                         pool_out_size(w, kernel, stride, pl, pr))
        #: generated padded rows after the frame and columns after each row
        self.extra = (pool_extra(h, kernel, stride, pt, pb) if pt or pb else 0,
                      pool_extra(w, kernel, stride, pl, pr) if pl or pr else 0)
        self.out_shape = (c, *self.out_dims)
        layout = vector(dtype, pe)
        super().__init__({"i": In(stream.Signature(layout)),
                          "o": Out(stream.Signature(layout))})

    @classmethod
    def from_layer(cls, info: LayerInfo) -> MaxPoolUnit:
        """The max-pool of a :class:`~lowbit_hdl.ir.MaxPool` layer (PE = ``info.in_fold``)."""
        lay = info.layer
        if not isinstance(lay, MaxPool):
            raise ValueError(f"layer {info.name}: MaxPoolUnit needs a MaxPool layer, got "
                             f"{type(lay).__name__}")
        return cls(info.in_shape, lay.kernel, lay.stride, info.in_fold, info.in_dtype,
                   info.pads)

    @property
    def slots(self) -> int:
        """Windows an input row (column) can belong to: ``⌈k/s⌉``."""
        return -(-self.kernel // self.stride)

    @property
    def cycles_per_frame(self) -> int:
        """``(H + E_h)·(W + E_w)·C/PE`` (:func:`lowbit_hdl.cost.pool_cycles`)."""
        return pool_cycles(self.in_shape, self.pe, self.kernel, self.stride, self.pads)

    @property
    def buffer_bits(self) -> int:
        c = self.in_shape[0]
        return self.slots * (self.out_dims[1] + 1) * c * self.dtype.bits

    def last_output_beat(self) -> int:
        """Index (within a frame) of the step (input beat or generated padded position)
        that completes the frame's last output."""
        c, h, w = self.in_shape
        cg = c // self.pe
        oh, ow = self.out_dims
        pt, _, pl, _ = self.pads
        eh, ew = self.extra
        r = min((oh - 1) * self.stride + self.kernel - 1 - pt, h + eh - 1)
        col = min((ow - 1) * self.stride + self.kernel - 1 - pl, w + ew - 1)
        return (r * (w + ew) + col) * cg + cg - 1

    def elaborate(self, platform) -> Module:
        m = Module()
        c, h, w = self.in_shape
        k, s, pe = self.kernel, self.stride, self.pe
        cg_n = c // pe
        ow_n = self.out_dims[1]
        slots = self.slots
        layout = self.i.payload.shape()
        bipolar = self.dtype.is_bipolar

        def vmax(a: data.View, b: data.View) -> data.View:
            """Element-wise max of two beats."""
            if bipolar:  # 1-bit elements (+1 = 1): the max of all of them at once is the OR
                return layout(a.as_value() | b.as_value())
            return layout(Cat(*[Mux(a[j] > b[j], a[j], b[j]) for j in range(pe)]))

        m.submodules.skid = skid = SkidBuffer(layout)
        wiring.connect(m, wiring.flipped(self.o), skid.o)

        pt, pb, pl, pr = self.pads
        eh, ew = self.extra
        hs, ws = h + eh, w + ew  # step positions: real pixels, then generated padding
        hrow = Signal(range(hs))
        wcol = Signal(range(ws))
        cg = Signal(range(cg_n))
        vbase = Signal(range(ow_n * cg_n + 1))  # completed column windows of this row · C/PE

        # a generated padded position takes a cycle, accepts no input and feeds the pad
        # value (all-zero bits: the minimum of BIPOLAR and UINT, never winning the max)
        virtual = Signal()
        if eh or ew:
            m.d.comb += virtual.eq((hrow >= h) | (wcol >= w))
        fire = Signal()  # one step of the position counters
        m.d.comb += [self.i.ready.eq(skid.i.ready & ~virtual),
                     fire.eq(skid.i.ready & (self.i.valid | virtual))]
        x = Signal(layout)
        m.d.comb += x.eq(Mux(virtual, 0, self.i.payload.as_value()))

        # per-column / per-row window flags (tables indexed by the position counters)
        htab = _windows(w, k, s, slots, pl, pr, ew)
        vtab = _windows(h, k, s, slots, pt, pb, eh)
        h_act = Signal(slots)
        h_first = Signal(slots)
        h_last = Signal(slots)
        v_act = Signal(slots)
        v_first = Signal(slots)
        v_last = Signal(slots)
        for sig_act, sig_first, sig_last, tab, ctr in (
                (h_act, h_first, h_last, htab, wcol), (v_act, v_first, v_last, vtab, hrow)):
            with m.Switch(ctr):
                for pos, flags in enumerate(tab):
                    with m.Case(pos):
                        m.d.comb += [
                            sig_act.eq(sum(int(a) << j for j, (a, _, _) in enumerate(flags))),
                            sig_first.eq(sum(int(f) << j for j, (_, f, _) in enumerate(flags))),
                            sig_last.eq(sum(int(la) << j for j, (_, _, la) in enumerate(flags)))]

        # horizontal stage: running max over the window's columns, per channel group
        hres = Signal(layout)
        for j in range(slots):
            mem = memory.Memory(shape=layout, depth=cg_n, init=[])
            m.submodules[f"hacc{j}"] = mem
            rd = mem.read_port(domain="comb")
            wr = mem.write_port()
            new = Signal(layout, name=f"hnew{j}")
            m.d.comb += [rd.addr.eq(cg), new.eq(Mux(h_first[j], x, vmax(rd.data, x))),
                         wr.addr.eq(cg), wr.data.eq(new), wr.en.eq(fire & h_act[j])]
            with m.If(h_last[j]):
                m.d.comb += hres.eq(new)
        hvalid = h_last.any()

        # vertical stage: running max over the window's rows, per (output column, group)
        vaddr = vbase + cg
        out = Signal(layout)
        for j in range(slots):
            mem = memory.Memory(shape=layout, depth=ow_n * cg_n, init=[])
            m.submodules[f"vacc{j}"] = mem
            rd = mem.read_port(domain="comb")
            wr = mem.write_port()
            new = Signal(layout, name=f"vnew{j}")
            m.d.comb += [rd.addr.eq(vaddr), new.eq(Mux(v_first[j], hres, vmax(rd.data, hres))),
                         wr.addr.eq(vaddr), wr.data.eq(new),
                         wr.en.eq(fire & hvalid & v_act[j])]
            with m.If(v_last[j]):
                m.d.comb += out.eq(new)
        m.d.comb += [skid.i.valid.eq(fire & hvalid & v_last.any()), skid.i.payload.eq(out)]

        # position counters
        cg_last, w_last, h_last_row = cg == cg_n - 1, wcol == ws - 1, hrow == hs - 1
        with m.If(fire):
            m.d.sync += cg.eq(Mux(cg_last, 0, cg + 1))
            with m.If(cg_last):
                m.d.sync += wcol.eq(Mux(w_last, 0, wcol + 1))
                with m.If(w_last):
                    m.d.sync += [hrow.eq(Mux(h_last_row, 0, hrow + 1)), vbase.eq(0)]
                with m.Elif(hvalid):
                    m.d.sync += vbase.eq(vbase + cg_n)
        return m
