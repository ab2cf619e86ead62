"""Streaming k×k max-pool with stride (windows may overlap), PE channels per beat.

Input: ``PE`` channels of one pixel per beat, raster order (H, W, C/PE beats per pixel).
Output: ``PE`` channels of one pooled pixel per beat, raster order. Pooled pixels are those of
the golden model's floor formula ``OH = (H − k)//s + 1``; input rows/columns beyond the last
full window are read and dropped.

The max is separable: a horizontal stage keeps, for the ``⌈k/s⌉`` output columns a pixel can
belong to, the running max over the window's columns (``⌈k/s⌉ × C`` elements); when a
column window completes, its result updates the vertical stage, which keeps the running max
over the window's rows for the ``⌈k/s⌉`` output rows an input row can belong to
(``⌈k/s⌉ × OW × C`` elements). Both are read-modify-written in the accepting cycle
(distributed RAM with asynchronous read). BIPOLAR max is the OR of the bits (+1 = 1), UINT
max an unsigned compare.

Cycles per frame: ``H·W·C/PE`` (one input beat per cycle, ``i.ready`` is registered). A pooled
pixel's beat is on the output one cycle after the input beat that completes it was accepted.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import pool_cycles
from ..ir import LayerInfo, MaxPool
from ..runtime.dtypes import BIPOLAR, DataType
from .params import check_dtype, check_int
from .payload import vector
from .skid import SkidBuffer

__all__ = ["MaxPoolUnit"]


def _windows(n: int, k: int, s: int, slots: int) -> list[list[tuple[bool, bool, bool]]]:
    """For every input position, per slot: (active, first, last) of the window in that slot."""
    out_n = (n - k) // s + 1
    table = [[(False, False, False)] * slots for _ in range(n)]
    for o in range(out_n):
        for kk in range(k):
            table[o * s + kk][o % slots] = (True, kk == 0, kk == k - 1)
    return table


class MaxPoolUnit(wiring.Component):
    """k×k max-pool, stride ``s`` (default k), ``pe`` channels per beat, BIPOLAR or UINT.

    ``cycles_per_frame`` is ``H·W·C/PE``; ``buffer_bits`` is ``⌈k/s⌉·(OW + 1)·C·bits``.

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

    Attributes
    ----------
    i, o : In/Out(stream.Signature(ArrayLayout(unsigned(dtype.bits), pe)))
        ``pe`` channels of one input pixel / one pooled pixel.

    Raises
    ------
    TypeError
        If a size is not an int or ``dtype`` is not a DataType.
    ValueError
        If a value breaks a constraint (sizes, divisibility, window larger than the input,
        INTk ``dtype``).
    """

    def __init__(self, in_shape: tuple[int, int, int], kernel: int = 2,
                 stride: int | None = None, pe: int = 1, dtype: DataType | None = None) -> None:
        dtype = BIPOLAR if dtype is None else check_dtype("dtype", dtype)
        kernel = check_int("kernel", kernel)
        stride = kernel if stride is None else check_int("stride", stride)
        pe = check_int("PE", pe)
        if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
            raise ValueError(f"in_shape={in_shape} must be (C, H, W) with every size ≥ 1")
        c, h, w = (check_int(n, v) for n, v in zip("CHW", in_shape, strict=True))
        if kernel > h or kernel > w:
            raise ValueError(f"kernel {kernel}×{kernel} is larger than the input {h}×{w}")
        if c % pe:
            raise ValueError(f"PE={pe} does not divide C={c}")
        if dtype.kind not in ("bipolar", "uint"):
            raise ValueError(f"dtype={dtype} is not supported (BIPOLAR or UINTk)")
        self.in_shape = (c, h, w)
        self.kernel, self.stride, self.pe, self.dtype = kernel, stride, pe, dtype
        self.out_dims = ((h - kernel) // stride + 1, (w - kernel) // stride + 1)
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
        return cls(info.in_shape, lay.kernel, lay.stride, info.in_fold, info.in_dtype)

    @property
    def slots(self) -> int:
        """Windows an input row (column) can belong to: ``⌈k/s⌉``."""
        return -(-self.kernel // self.stride)

    @property
    def cycles_per_frame(self) -> int:
        """``H·W·C/PE`` (:func:`lowbit_hdl.cost.pool_cycles`)."""
        return pool_cycles(self.in_shape, self.pe)

    @property
    def buffer_bits(self) -> int:
        c = self.in_shape[0]
        return self.slots * (self.out_dims[1] + 1) * c * self.dtype.bits

    def last_output_beat(self) -> int:
        """Index (within a frame) of the input beat that completes the frame's last output."""
        c, h, w = self.in_shape
        cg = c // self.pe
        oh, ow = self.out_dims
        r = (oh - 1) * self.stride + self.kernel - 1
        col = (ow - 1) * self.stride + self.kernel - 1
        return (r * w + col) * cg + cg - 1

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

        hrow = Signal(range(h))
        wcol = Signal(range(w))
        cg = Signal(range(cg_n))
        vbase = Signal(range(ow_n * cg_n + 1))  # completed column windows of this row · C/PE

        fire = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(skid.i.ready)
        x = self.i.payload

        # per-column / per-row window flags (tables indexed by the position counters)
        htab, vtab = _windows(w, k, s, slots), _windows(h, k, s, slots)
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
        cg_last, w_last, h_last_row = cg == cg_n - 1, wcol == w - 1, hrow == h - 1
        with m.If(fire):
            m.d.sync += cg.eq(Mux(cg_last, 0, cg + 1))
            with m.If(cg_last):
                m.d.sync += wcol.eq(Mux(w_last, 0, wcol + 1))
                with m.If(w_last):
                    m.d.sync += [hrow.eq(Mux(h_last_row, 0, hrow + 1)), vbase.eq(0)]
                with m.Elif(hvalid):
                    m.d.sync += vbase.eq(vbase + cg_n)
        return m
