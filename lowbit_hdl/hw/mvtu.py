"""Matrix-vector-threshold unit (MVTU): a folded, streaming matrix × vector product with a
fused multi-threshold activation, FINN style.

Geometry: an ``MH × MW`` weight matrix is computed by ``PE`` processing elements with
``SIMD`` lanes each, in ``NF = MH/PE`` neuron folds × ``SF = MW/SIMD`` synapse folds. An input
vector arrives as ``SF`` beats of ``SIMD`` elements; it is used directly during fold 0 and
kept in an input buffer for the folds ``1 … NF−1``. Output beat ``nf`` carries neurons
``nf·PE … nf·PE + PE − 1`` (element ``p`` = neuron ``nf·PE + p``): ``NF`` beats per vector.

Arithmetic (``mode``); the accumulator works in a domain ``U`` with ``acc = scale·U +
offset``, and thresholds/raw outputs are converted exactly at build time:

* ``"xnor"``: BIPOLAR weights × BIPOLAR inputs. XNOR-popcount with a LUT6 compressor tree
  (:mod:`.popcount`); ``U`` is the popcount, ``acc = 2U − MW``.
* ``"bits"``: small integer products (at most ``MAX_BIT_PRODUCTS`` one-bit partial products
  per lane: BIPOLAR × UINT/INT by conditional negation, i.e. add/subtract; INT2 × UINT2 …
  INT4 × UINT4 multiply-add): every lane becomes a bit matrix summed by the same compressor
  tree (:mod:`.bitmatrix`); ``U ≥ 0``, ``acc = U + offset``.
* ``"mul"``: wider products (e.g. INT8 weights × UINT8 pixels): multiply and add with a
  range-tracked adder tree (:mod:`.addtree`), maps to DSPs.

A BIPOLAR activation is computed without a comparator: each fold's accumulator starts at
``−T`` (read from a per-PE ROM) and the sign bit is the output. UINTk activations use the
shared thermometer comparator of :mod:`.threshold`.

Pipeline (one step = one PE×SIMD slice per cycle, no bubbles): issue (counters, memory
reads, operand register) → lanes + compressor/adder tree → accumulate → activation written
into a credit-reserved output FIFO (:class:`.credit.CreditFIFO`). Because a slot is reserved
before the last step of a fold enters the pipeline, the datapath never stalls on the
output; ``i.ready`` and ``o.valid`` depend on registers only.

Timing: with no stalls, ``V`` vectors take ``NF·SF·V + latency`` cycles from the first
accepted input beat to the last output beat: ``latency = LATENCY = 3``, or 4 when each PE's
compressor tree is split into lane groups (:attr:`MVTU.tree_groups`) whose sums are
registered before they are added, because one tree over all ``SIMD`` lanes would not fit a
10 ns clock (wide bit matrices such as INT8 weights × UINT2 or UINT3 activations;
:data:`.bitmatrix.MAX_TREE_TERMS`).

Weight source (``weight_source``): ``"rom"`` builds the weights into per-PE memories;
``"stream"`` takes them from the port ``w``, one beat of ``PE·SIMD`` weights per step in the
order of :mod:`lowbit_hdl.runtime.ddr` (the DDR weight format). A beat accepted on ``w`` sits
in a one-beat buffer and is used from the next cycle on, so ``w.ready`` (``buffer empty or
step``) never depends on ``w.valid`` and ``i.ready`` still depends on registers only. A step
needs a buffered weight beat; with the weight stream valid (one beat per cycle) the timing is
that of the ROM, the first weight beat accepted at least one cycle before the first input.

Loop order (``order``): ``"pixel"`` (above) uses each input vector for all ``NF`` neuron
folds. ``"tile"`` runs ``for nf: for v in P vectors: for sf`` with ``P = tile_vectors``: the
upstream replays the ``P`` vectors of a frame ``NF`` times (``NF·P·SF`` input beats), each
input vector serves one fold only (no input buffer), and vector ``v`` of tile ``nf`` gives one
output beat (neurons ``nf·PE …``): ``NF·P`` output beats per frame, tile-major. The weights
are ``SF`` beats per vector (``NF·P·SF`` per frame, the tile replayed upstream) from the
stream, or from the ROM at ``nf·SF + sf``. Cycles per frame: ``NF·P·SF``, the formula above
with ``V = P``.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..cost import mvtu_cycles
from ..ir import LayerInfo
from ..runtime.accdomain import (
    MAX_BIT_PRODUCTS,
    acc_domain,
    product_range,
    thresholds_to_u,
    u_range,
)
from ..runtime.ddr import weight_codes
from ..runtime.dtypes import INT, DataType, signed_bits_for_range
from ..runtime.words import pack_word
from .addtree import fit, sum_tree
from .bitmatrix import lane_terms, sum_terms, tree_groups
from .credit import CreditFIFO
from .params import check_choice, check_dtype, check_int
from .payload import vector
from .popcount import TREE_BUDGET, TreeDelay, compress_columns, xnor_popcount
from .rom import RAM_STYLES, rom_read
from .threshold import (
    check_act,
    check_thresholds,
    pack_thresholds,
    threshold_activation,
    threshold_shape,
)

__all__ = ["MVTU"]


class MVTU(wiring.Component):
    """Matrix-vector-threshold unit.

    Parameters
    ----------
    mw, mh : int
        Matrix width (inputs) and height (outputs).
    pe, simd : int
        Processing elements (must divide ``mh``) and lanes per PE (must divide ``mw``).
    weight_dtype : DataType
        BIPOLAR or INTk.
    in_dtype : DataType
        BIPOLAR, UINTk or INTk.
    weights : array_like or None
        (MH, MW) integers of ``weight_dtype``; may be ``None`` with ``weight_source="stream"``.
    thresholds : array_like or None
        (MH, T) integers ascending per row, or ``None`` with ``act=None``.
    act : DataType or None
        BIPOLAR, UINTk with k ≤ 8, or ``None`` for raw accumulators.
    ram_style : str
        Weight memories: ``"auto"``, ``"block"`` or ``"distributed"``.
    weight_source : str
        ``"rom"`` (weights built in) or ``"stream"`` (port ``w``).
    order : str
        ``"pixel"`` (each vector through all neuron folds) or ``"tile"`` (neuron fold major
        over ``tile_vectors`` replayed vectors).
    tile_vectors : int or None
        Vectors per frame ``P`` for ``order="tile"``; ``None`` otherwise.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(elem_shape(in_dtype), simd)))
        One beat: ``simd`` input elements (:func:`.payload.vector`; ``signed`` for INTk).
    o : Out(stream.Signature(ArrayLayout(elem_shape(out_dtype), pe)))
        One beat: ``pe`` outputs of ``out_dtype``: ``act`` (1 bit for BIPOLAR), or
        ``INT(acc_bits)`` when ``act`` is ``None``.
    w : In(stream.Signature(ArrayLayout(elem_shape(weight_dtype), pe·simd)))
        Only with ``weight_source="stream"``: one beat per step, element ``p·simd + s`` the
        weight of PE ``p``, lane ``s`` (:func:`lowbit_hdl.runtime.ddr.weight_beats`).

    Raises
    ------
    TypeError
        If a size is not an integer or a dtype is not a DataType.
    ValueError
        If a value breaks a constraint (sizes, divisibility, supported types, shapes and
        ranges of weights and thresholds, ``ram_style``, ``weight_source``, ``order``,
        ``tile_vectors``).
    """

    #: pipeline latency with one compressor tree per PE (:attr:`latency`)
    LATENCY = 3
    WEIGHT_SOURCES = ("rom", "stream")
    ORDERS = ("pixel", "tile")
    #: lanes with at most this many 1-bit partial products use the bit-matrix form
    #: (LUTs); wider ones (e.g. INT8×UINT8) multiply, which maps to DSPs
    MAX_BIT_PRODUCTS = MAX_BIT_PRODUCTS

    def __init__(self, mw: int, mh: int, pe: int, simd: int, weight_dtype: DataType,
                 in_dtype: DataType, weights, thresholds=None, act: DataType | None = None,
                 ram_style: str = "auto", *, weight_source: str = "rom", order: str = "pixel",
                 tile_vectors: int | None = None) -> None:
        mw, mh = check_int("MW", mw), check_int("MH", mh)
        pe, simd = check_int("PE", pe), check_int("SIMD", simd)
        if mw % simd:
            raise ValueError(f"MW={mw} is not a multiple of SIMD={simd}")
        if mh % pe:
            raise ValueError(f"MH={mh} is not a multiple of PE={pe}")
        if check_dtype("weight_dtype", weight_dtype).kind == "uint":
            raise ValueError(f"weight_dtype={weight_dtype} is not supported "
                             "(weights are BIPOLAR or INTk)")
        check_dtype("in_dtype", in_dtype)
        check_act(act)
        check_choice("ram_style", ram_style, RAM_STYLES)
        check_choice("weight_source", weight_source, self.WEIGHT_SOURCES)
        check_choice("order", order, self.ORDERS)
        if order == "tile":
            if tile_vectors is None:
                raise ValueError("order='tile' needs tile_vectors (vectors per frame)")
            tile_vectors = check_int("tile_vectors", tile_vectors)
        elif tile_vectors is not None:
            raise ValueError(f"tile_vectors={tile_vectors!r} is only for order='tile'")
        if weights is None and weight_source == "rom":
            raise ValueError("weight_source='rom' needs the weights")
        w = None
        if weights is not None:
            w = np.asarray(weights)
            if w.shape != (mh, mw):
                raise ValueError(f"weights have shape {w.shape}, expected (MH, MW) = "
                                 f"({mh}, {mw})")
            weight_dtype.check(w, "weights")
            w = w.astype(np.int64)
        if act is None:
            if thresholds is not None:
                raise ValueError("act=None (raw accumulators) but thresholds were given")
            t = None
        else:
            if thresholds is None:
                raise ValueError(f"act={act} needs thresholds of shape (MH, T)")
            t = check_thresholds(thresholds, mh, act, "MVTU")

        self.mw, self.mh, self.pe, self.simd = mw, mh, pe, simd
        self.nf, self.sf = mh // pe, mw // simd
        self.weight_dtype, self.in_dtype, self.act = weight_dtype, in_dtype, act
        self.weights, self.thresholds = w, t
        self.ram_style = ram_style
        self.weight_source, self.order, self.tile_vectors = weight_source, order, tile_vectors
        self.binary = weight_dtype.is_bipolar and in_dtype.is_bipolar
        lo, hi = product_range(weight_dtype, in_dtype)
        self.lane_range = (lo, hi)
        self.acc_min, self.acc_max = lo * mw, hi * mw
        self.acc_bits = signed_bits_for_range(self.acc_min, self.acc_max)
        self.out_dtype = act if act is not None else INT(self.acc_bits)
        self.in_bits = in_dtype.bits
        self.out_bits = self.out_dtype.bits
        # accumulation domain: acc = scale·U + offset, U in [u_lo, u_hi] (one owner:
        # lowbit_hdl.runtime.accdomain)
        self.mode, self.scale, self.offset = acc_domain(weight_dtype, in_dtype, mw)
        self.u_range = u_range(weight_dtype, in_dtype, mw)
        ports = {
            "i": In(stream.Signature(vector(in_dtype, simd))),
            "o": Out(stream.Signature(vector(self.out_dtype, pe))),
        }
        if weight_source == "stream":
            ports["w"] = In(stream.Signature(vector(weight_dtype, pe * simd)))
        super().__init__(ports)

    @classmethod
    def from_layer(cls, info: LayerInfo, *, weight_source: str = "rom", order: str = "pixel",
                   tile_vectors: int | None = None) -> MVTU:
        """MVTU of a ``Conv``/``FC`` layer from :meth:`Network.infer` (weights attached);
        the keywords are those of the constructor."""
        if not info.is_mvtu:
            raise ValueError(f"layer {info.name}: {type(info.layer).__name__} is not an MVTU "
                             "layer (Conv or FC)")
        lay = info.layer
        unit = cls(info.mw, info.mh, lay.pe, lay.simd, lay.weight_dtype, info.in_dtype,
                   info.weight_matrix(), lay.thresholds, lay.act, lay.ram_style,
                   weight_source=weight_source, order=order, tile_vectors=tile_vectors)
        assert unit.acc_bits == info.acc_bits, (unit.acc_bits, info.acc_bits)
        return unit

    @property
    def cycles_per_vector(self) -> int:
        """Steady-state cycles per input vector: ``NF·SF`` (:func:`lowbit_hdl.cost.mvtu_cycles`)."""
        return mvtu_cycles(self.mh, self.mw, self.pe, self.simd)

    def cycles(self, vectors: int) -> int:
        """Cycles from the first accepted input beat to the last output beat for ``vectors``
        back-to-back vectors with no stalls: ``NF·SF·vectors + latency`` (with
        ``order="tile"``, ``vectors`` counts distinct vectors, ``tile_vectors`` per frame, each
        replayed ``NF`` times)."""
        return mvtu_cycles(self.mh, self.mw, self.pe, self.simd, vectors) + self.latency

    @property
    def latency(self) -> int:
        """Cycles from a step's issue to its output: :data:`LATENCY`, plus one for the
        register between split compressor trees and their sum (:attr:`tree_groups` > 1)."""
        return self.LATENCY + (self.tree_groups > 1)

    @property
    def tree_groups(self) -> int:
        """Lane groups of each PE's compressor tree: for a bit matrix (``mode="bits"``) of
        more than :data:`.bitmatrix.MAX_TREE_TERMS` one-bit terms, enough groups of
        contiguous lanes to keep each tree within it; otherwise 1."""
        return tree_groups(self.simd, self.in_dtype, self.weight_dtype)

    @property
    def tree_budget(self) -> int:
        """Delay budget of each compressor tree (:mod:`.popcount` units): its operands come
        from flip-flops, except weights from a memory Yosys may put into a block RAM without
        output register (2.5 ns, not 0.5), i.e. a ``"rom"`` source at ``ram_style="auto"``."""
        return TREE_BUDGET - (4 if self.weight_source == "rom"
                              and self.ram_style == "auto" else 0)

    def tree_delay(self, groups: int) -> int:
        """Latest arrival before the final adders (delay units of :mod:`.popcount`, the
        model's) of PE 0's compressor trees over ``groups`` groups of contiguous lanes
        (built once, unconnected); 0 for ``mode="mul"``."""
        if self.mode == "mul":
            return 0
        report = TreeDelay()
        m = Module()
        m._MustUse__silence = True  # built only to measure the trees, never elaborated
        self._group_sums(m, Signal(vector(self.in_dtype, self.simd)),
                         Signal(vector(self.weight_dtype, self.simd)), 0, groups, report)
        return report.delay

    # -- elaboration ---------------------------------------------------------------------------

    def _weight_words(self) -> list[list[int]]:
        """Weight memories, one per PE: in that of PE ``p`` address ``nf·SF + sf`` holds the
        SIMD encoded weights of that fold, lane ``s`` in element ``s``: PE ``p``'s slice of
        the DDR beat (:func:`lowbit_hdl.runtime.ddr.weight_codes`)."""
        codes = weight_codes(self.weights, self.weight_dtype, self.pe, self.simd)
        return [[pack_word(row[p].tolist(), self.weight_dtype.bits) for row in codes]
                for p in range(self.pe)]

    def _lane(self, x: Value, w: Value) -> Value:
        """One lane's product for the non-binary modes (``x``, ``w``: elements, INTk signed,
        BIPOLAR the encoded bit, 1 = +1)."""
        if self.weight_dtype.is_bipolar:
            return Mux(w, x, -x)
        if self.in_dtype.is_bipolar:
            return Mux(x, w, -w)
        return w * x

    def _group_sums(self, m: Module, x: data.View, w: data.View, p: int, groups: int,
                    report: TreeDelay | None = None) -> list[tuple[Value, int, int]]:
        """One step of PE ``p`` in the accumulation domain ``U`` as ``groups`` partial sums
        of contiguous lanes, each ``(value, lo, hi)``; ``report`` gets the trees' delay."""
        simd = self.simd
        bounds = [(k * simd // groups, (k + 1) * simd // groups) for k in range(groups)]
        if self.mode == "xnor":
            # 1-bit elements: the XNOR-popcount tree works on the flat bit vectors
            xv, wv = x.as_value(), w.as_value()
            return [(xnor_popcount(m, xv[a:b], wv[a:b], name=f"pc{p}" + (f"_{k}" if groups > 1
                                                                        else ""),
                                   budget=self.tree_budget, report=report), 0, b - a)
                    for k, (a, b) in enumerate(bounds)]
        lo, hi = self.lane_range
        if self.mode == "bits":
            out = []
            for k, (a, b) in enumerate(bounds):
                terms, c = [], 0
                for s in range(a, b):
                    t, c = lane_terms(x[s], self.in_dtype, w[s], self.weight_dtype)
                    terms += t
                ulo, uhi = (b - a) * (lo - c), (b - a) * (hi - c)
                name = f"bm{p}" + (f"_{k}" if groups > 1 else "")
                out.append((fit(sum_terms(m, terms, name=name, budget=self.tree_budget,
                                          report=report), ulo, uhi), ulo, uhi))
            return out
        prods = [(fit(self._lane(x[s], w[s]), lo, hi), lo, hi) for s in range(simd)]
        return [sum_tree(prods)]

    @staticmethod
    def _add_groups(m: Module, sums: list[tuple[Value, int, int]],
                    p: int) -> tuple[Value, int, int]:
        """The sum of the unsigned group sums, by the compressor tree."""
        if len(sums) == 1:
            return sums[0]
        lo, hi = sum(s[1] for s in sums), sum(s[2] for s in sums)  # bit matrices: U ≥ 0
        width = max(len(v) for v, _, _ in sums)
        cols = [[v[c] for v, _, _ in sums if c < len(v)] for c in range(width)]
        return fit(compress_columns(m, cols, name=f"gs{p}"), lo, hi), lo, hi

    @staticmethod
    def _delayed(m: Module, *sigs: Signal) -> tuple[Signal, ...]:
        """Each signal one cycle later (a register, named after it)."""
        out = []
        for sig in sigs:
            r = Signal.like(sig, name=f"{sig.name}t")
            m.d.sync += r.eq(sig)
            out.append(r)
        return tuple(out)

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd, nf, sf = self.pe, self.simd, self.nf, self.sf
        x_layout, w_layout = self.i.payload.shape(), vector(self.weight_dtype, simd)

        buf = m.submodules.buf = CreditFIFO(self.o.payload.shape(),
                                            CreditFIFO.depth_for(self.latency, sf))
        wiring.connect(m, wiring.flipped(self.o), buf.o)

        # -- stage 0: issue ----------------------------------------------------------------
        rom, tile = self.weight_source == "rom", self.order == "tile"
        sfc = Signal(range(sf), name="sf")
        nfc = Signal(range(nf), name="nf")
        if rom:
            # waddr_next: the address of the next step, known a cycle early, so the weight
            # memory reads it into its output register (below) by the time the step needs it
            waddr = Signal(range(nf * sf))
            waddr_next = Signal(range(nf * sf))
            m.d.comb += waddr_next.eq(waddr)
            m.d.sync += waddr.eq(waddr_next)
        sf_last = sfc == sf - 1
        nf_first = nfc == 0
        issue_ok = ~sf_last | buf.can_reserve
        step = Signal()
        if not rom:
            # one-beat weight buffer: w.ready never depends on w.valid, and a step (and
            # i.ready) waits on a register
            wfull = Signal()
            wbeat = Signal(self.w.payload.shape())
            m.d.comb += self.w.ready.eq(~wfull | step)
            with m.If(self.w.ready):
                m.d.sync += wfull.eq(self.w.valid)
            with m.If(self.w.valid & self.w.ready):
                m.d.sync += wbeat.eq(self.w.payload)
            issue_ok = issue_ok & wfull
        if tile:
            # every input beat is used once: i.ready depends on registers only
            m.d.comb += [step.eq(issue_ok & self.i.valid), self.i.ready.eq(issue_ok)]
        else:
            m.d.comb += [step.eq(issue_ok & (~nf_first | self.i.valid)),
                         self.i.ready.eq(nf_first & issue_ok)]
        m.d.comb += buf.reserve.eq(step & sf_last)
        if tile:
            vc = Signal(range(self.tile_vectors), name="v")
            v_last = vc == self.tile_vectors - 1
            if rom:
                wbase = Signal(range(nf * sf))  # nf·SF
            with m.If(step):
                m.d.sync += sfc.eq(sfc + 1)
                if rom:
                    m.d.comb += waddr_next.eq(waddr + 1)
                with m.If(sf_last):
                    m.d.sync += [sfc.eq(0), vc.eq(vc + 1)]
                    if rom:
                        m.d.comb += waddr_next.eq(wbase)  # the same tile for the next vector
                    with m.If(v_last):
                        m.d.sync += [vc.eq(0), nfc.eq(nfc + 1)]
                        if rom:
                            m.d.comb += waddr_next.eq(waddr + 1)
                            m.d.sync += wbase.eq(waddr + 1)
                        with m.If(nfc == nf - 1):
                            m.d.sync += nfc.eq(0)
                            if rom:
                                m.d.comb += waddr_next.eq(0)
                                m.d.sync += wbase.eq(0)
        else:
            with m.If(step):
                m.d.sync += sfc.eq(sfc + 1)
                if rom:
                    m.d.comb += waddr_next.eq(waddr + 1)
                with m.If(sf_last):
                    m.d.sync += [sfc.eq(0), nfc.eq(nfc + 1)]
                    with m.If(nfc == nf - 1):
                        m.d.sync += nfc.eq(0)
                if rom:
                    with m.If(waddr == nf * sf - 1):
                        m.d.comb += waddr_next.eq(0)

        # -- stage 1: operands (memory read latency 1) -------------------------------------
        v1, first1, last1 = Signal(), Signal(), Signal()
        nf1 = Signal(range(nf))
        m.d.sync += [v1.eq(step), first1.eq(sfc == 0), last1.eq(sf_last), nf1.eq(nfc)]
        # x1 is a register, so the lane logic starts from flip-flops (and BRAM outputs)
        x1 = Signal(x_layout)
        if tile or nf == 1 or sf == 1:
            # tile order and NF=1: no reuse; SF=1: the register itself keeps the vector for
            # later folds
            with m.If(step if tile else step & nf_first):
                m.d.sync += x1.eq(self.i.payload)
        else:
            xbuf = Memory(shape=x_layout, depth=sf, init=[])
            m.submodules.xbuf = xbuf
            wp = xbuf.write_port()
            rp = xbuf.read_port(domain="comb")
            m.d.comb += [wp.addr.eq(sfc), wp.data.eq(self.i.payload),
                         wp.en.eq(step & nf_first), rp.addr.eq(sfc)]
            with m.If(step):
                m.d.sync += x1.eq(Mux(nf_first, self.i.payload, rp.data))
        if rom:
            weight_words = self._weight_words()
        else:
            # the weight operand register (the ROM's read register for weight_source="rom")
            w1 = Signal(self.w.payload.shape().size)
            with m.If(step):
                m.d.sync += w1.eq(wbeat)

        # -- stage 2: lanes + adder tree -> partial sums -----------------------------------
        split = self.tree_groups > 1
        if split:
            # the register between the group trees and their sum: the stages after it see
            # the step a cycle later
            v1, first1, last1, nf1 = self._delayed(m, v1, first1, last1, nf1)
        v2, first2, last2 = Signal(), Signal(), Signal()
        nf2 = Signal(range(nf))
        m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1), nf2.eq(nf1)]
        acc_lo, acc_hi = self.u_range
        t = None
        if self.act is not None:
            # acc ≥ T  ⟺  scale·U + offset ≥ T  ⟺  U ≥ ceil((T − offset) / scale)
            t = thresholds_to_u(self.thresholds, self.weight_dtype, self.in_dtype, self.mw)
        # BIPOLAR activation: the accumulator starts each fold at −T and the sign bit is the
        # comparison (no comparator); otherwise it starts at 0.
        preload = self.act is not None and self.act.is_bipolar
        if preload:
            reg_lo, reg_hi = acc_lo - (acc_hi + 1), acc_hi - acc_lo
        else:
            reg_lo, reg_hi = acc_lo, acc_hi
        accs = []
        for p in range(pe):
            if rom:
                if self.ram_style == "block":
                    # read at the next step's address into a register (the block RAM's
                    # output register): the tree starts from flip-flops, as with the
                    # stream's w1, not from the RAM's 2.5 ns clock-to-out
                    wword = Signal(w_layout.size, name=f"wq{p}")
                    m.d.sync += wword.eq(rom_read(m, f"w{p}", weight_words[p],
                                                  w_layout.size, waddr_next, self.ram_style))
                else:
                    # LUT ROM (its read register starts the tree) or, with "auto", maybe a
                    # block RAM: the tree's budget allows for that (tree_budget)
                    wword = rom_read(m, f"w{p}", weight_words[p], w_layout.size, waddr,
                                     self.ram_style)
            else:
                wword = w1[p * w_layout.size:(p + 1) * w_layout.size]
            sums = self._group_sums(m, x1, w_layout(wword), p, self.tree_groups)
            if split:
                regs = []
                for k, (v, glo, ghi) in enumerate(sums):
                    r = Signal.like(v, name=f"gsum{p}_{k}")
                    m.d.sync += r.eq(v)
                    regs.append((r, glo, ghi))
                sums = regs
            val, lo, hi = self._add_groups(m, sums, p)
            part = Signal(unsigned(max(1, hi.bit_length())) if lo >= 0
                          else signed(signed_bits_for_range(lo, hi)), name=f"part{p}")
            m.d.sync += part.eq(val)

            # -- stage 3: accumulate ---------------------------------------------------
            acc = Signal(unsigned(max(1, reg_hi.bit_length())) if reg_lo >= 0
                         else signed(signed_bits_for_range(reg_lo, reg_hi)), name=f"acc{p}")
            if preload:
                mask = (1 << len(acc)) - 1
                start = rom_read(m, f"thr{p}", [-int(t[f * pe + p, 0]) & mask
                                                for f in range(nf)], len(acc), nf1).as_signed()
            else:
                start = Const(0, 1)
            with m.If(v2):
                # part first: it is the carry chain's DI input (Yosys), a register, so each
                # accumulator bit costs one LUT (the mux fused into the XOR)
                m.d.sync += acc.eq(fit(part + Mux(first2, start, acc), reg_lo, reg_hi))
            accs.append(acc)
        v3 = Signal()
        m.d.sync += v3.eq(v2 & last2)

        # -- stage 4: activation into the output FIFO --------------------------------------
        outs = []
        if self.act is None:
            for acc in accs:
                if self.mode == "xnor":
                    u = Cat(Const(0, 1), acc, Const(0, 1)).as_signed()  # 2U, U ≥ 0
                elif self.mode == "bits":
                    u = Cat(acc, Const(0, 1)).as_signed()  # U ≥ 0
                else:
                    u = acc
                outs.append((u + self.offset)[:self.acc_bits])
        elif preload:
            outs = [~acc[-1] for acc in accs]
        else:
            tshape = threshold_shape(acc_lo, acc_hi)
            for p, acc in enumerate(accs):
                word = rom_read(m, f"thr{p}", [pack_thresholds(t[f * pe + p], tshape)
                                               for f in range(nf)],
                                tshape.width * t.shape[1], nf2)
                outs.append(threshold_activation(acc, word, tshape, self.act))
        m.d.comb += [buf.w_en.eq(v3), buf.w_data.eq(Cat(*outs))]
        return m
