"""XNOR-popcount as a compressor tree of LUT6 counters and short carry chains.

The bipolar dot product of two bit vectors is ``2·popcount(XNOR(x, w)) − N``; this module
builds the popcount part. Bits of weight ``2^c`` lie in column ``c`` of a *heap*; counters
take bits from one or two columns and put their sum back as fewer bits, until every column
holds at most two bits and one carry-chain adder adds the two rows.

Two kinds of counter, both written so that Yosys/ABC (and Vivado) map them as intended:

* **LUT counters** (generalised parallel counters, :data:`GPCS`): at most six input bits,
  one LUT6 per output bit, written as truth-table lookups. The first level counts three
  lanes of the XNOR vector ``~(x ^ w)``: two three-input functions of XNOR bits, each
  a six-input function of ``x`` and ``w`` that synthesis maps into one LUT6 (the XNOR
  gates have no other load). The XNOR vector is one signal so that simulation
  computes it with one word operation and each counter's index is one slice of it.
* **Chain counters**: ``X + Y + cin`` on a carry chain (CARRY4), where ``Y`` is the count of
  at most five bits (or of two XNOR lanes and one bit) and ``X``, ``cin`` are heap bits.
  Position ``p`` of the chain needs ``S = X_p ⊕ Y_p``, one LUT6 (``Y_p`` is a function of
  the five inputs and is fused into it), and ``DI = X_p``, a heap bit that exists anyway;
  the carry logic is free. A chain of ``k`` positions therefore costs ``k`` LUTs and
  removes up to ``5 + k + 1 − (k + 1)`` bits: five bits of column ``c`` plus ``X`` and
  ``cin`` become four bits with three LUTs (a LUT counter removes one bit per LUT). Two
  lanes and three bits of column 0 plus one of column 1 become three bits with two LUTs.

Every counter takes the earliest bits of its columns first, and a counter's carries may join
their columns in the same sweep. Which counters are used is chosen at build time by dry runs
of this greedy reduction (:func:`_search`): the fewest LUTs (chain positions weighted by
``1 + CHAIN_PENALTY``) whose bits all arrive within a delay budget (:data:`TREE_BUDGET`,
half-nanosecond units of the delay model in docs/hardware.md, "Logic depth").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal, Value

__all__ = ["lut_function", "compress_columns", "xnor_popcount", "chain_lane_pairs", "GPCS",
           "CHAINS", "TreeDelay"]


@dataclass
class TreeDelay:
    """The latest arrival (delay units of :data:`LUT_DELAY`) of a heap bit before the final
    adder, over the trees built with it as ``report``: a tree fits its budget when this is
    no later than the budget."""

    delay: int = 0


def lut_function(m: Module, inputs: Sequence[Value], fn: Callable[[int], int], nout: int,
                 name: str = "lut") -> list[Signal]:
    """Outputs bit ``j`` of ``fn(index)`` for ``index = Cat(*inputs)`` as ``nout`` signals.

    Each output is a constant truth table indexed by the inputs (one LUT for ≤ 6 input
    bits); an input may be several bits wide (a slice gathers faster in simulation).
    """
    idx = Cat(*inputs)
    n = len(idx)
    outs: list[Signal] = []
    for j in range(nout):
        table = sum(((fn(v) >> j) & 1) << v for v in range(1 << n))
        o = Signal(name=f"{name}_{j}")
        m.d.comb += o.eq(Const(table, 1 << n).bit_select(idx, 1))
        outs.append(o)
    return outs


def _count(v: int) -> int:
    return bin(v).count("1")


# LUT counters (bits taken from column c+1, bits from column c, output bits): at most six
# inputs (one LUT6 per output bit), in order of preference.
GPCS: tuple[tuple[int, int, int], ...] = (
    (0, 6, 3), (1, 5, 3), (0, 5, 3), (2, 3, 3), (0, 4, 3), (0, 3, 2),
)

# Chain counters: bits of column c counted into Y (Y has bit_length(k) positions).
CHAINS: tuple[int, ...] = (5, 3)

#: delay model of the tree, in units of half a nanosecond (docs/hardware.md, "Logic
#: depth"): a LUT level with its net, and a chain counter (a LUT into a carry chain)
LUT_DELAY, CHAIN_DELAY = 2, 3
#: latest a heap bit may arrive (from the operands) before the final adder: from flip-flops
#: (0.5 ns) and with the final adder (a LUT and a carry chain, about 1.6 ns) and setup, the
#: tree fits a 10 ns clock on xc7z020-1
TREE_BUDGET = 12

#: extra cost per chain position when the search compares trees: Yosys/ABC maps some chain
#: positions with a second LUT (64 lanes: 72 modelled, 77–81 mapped; 32 lanes: 39 modelled
#: with chains, 55 mapped, against 39 mapped without), so a chain must save clearly more
#: than a LUT counter to be chosen
CHAIN_PENALTY = 0.5

# a heap bit: (delay in half-ns units, serial number for a stable order, the bit)
Bit = tuple[int, int, Value]


def _key(t: Bit) -> tuple[int, int]:
    return t[0], t[1]


class _Heap:
    """Bit columns with the counters that reduce them (one Amaranth module)."""

    def __init__(self, m: Module | None, name: str) -> None:
        # m=None: a dry run that only counts LUTs and delays
        self.m, self.name = m, name
        self.serial = 0
        self.k = 0
        self.luts = 0
        self.chain_luts = 0

    def bit(self, v: Value, depth: int = 0) -> Bit:
        self.serial += 1
        return depth, self.serial, v

    def lut(self, inputs: Sequence[Value], fn: Callable[[int], int], nout: int,
            depth: int) -> list[Bit]:
        """A LUT counter: ``nout`` bits of ``fn`` (weights 1, 2, 4 … from its column)."""
        self.k += 1
        self.luts += nout
        if self.m is None:
            return [self.bit(Const(0, 1), depth) for _ in range(nout)]
        outs = lut_function(self.m, inputs, fn, nout, name=f"{self.name}_g{self.k}")
        return [self.bit(o, depth) for o in outs]

    def chain(self, y_inputs: Sequence[Value], y_fn: Callable[[int], int], y_max: int,
              xs: Sequence[Value | None], cin: Value | None, depth: int) -> list[Bit]:
        """A chain counter: bits of ``X + Y + cin`` from its column up, ``Y = y_fn(inputs)``
        (at most ``y_max``), ``xs[p]`` the heap bit of position ``p`` or ``None``."""
        self.k += 1
        npos = len(xs)
        assert y_max < (1 << npos) and len(Cat(*y_inputs)) <= 5
        self.luts += npos
        self.chain_luts += npos
        x_max = sum(1 << p for p, x in enumerate(xs) if x is not None)
        total_max = x_max + y_max + (cin is not None)
        if self.m is None:
            return [self.bit(Const(0, 1), depth) for _ in range(total_max.bit_length())]
        ys = lut_function(self.m, y_inputs, y_fn, npos, name=f"{self.name}_y{self.k}")
        # X first: Yosys feeds the first operand to the carry chain's DI inputs
        x = Cat(*[Const(0, 1) if x is None else x for x in xs])
        total = x + Cat(*ys)
        if cin is not None:
            total = total + cin
        # one signal: slices of the expression would each repeat the adder in the Verilog
        s = Signal(total_max.bit_length(), name=f"{self.name}_s{self.k}")
        self.m.d.comb += s.eq(total)
        return [self.bit(s[j], depth) for j in range(len(s))]


def _take(col: list[Bit], k: int) -> tuple[list[Bit], list[Bit]]:
    return col[:k], col[k:]


class _OverBudget(Exception):
    """The heap cannot be reduced within the delay budget."""


def _reduce(h: _Heap, heap: list[list[Bit]], budget: int, chain_limit: int,
            mix_limit: int) -> list[list[Bit]]:
    """Counters until every column holds at most two bits, none of them later than
    ``budget`` (delay units, :data:`LUT_DELAY`); chain counters only where they end by
    ``chain_limit``, carries counted in the same sweep while no later than ``mix_limit``.
    Raises :class:`_OverBudget` when stuck."""
    while heap and max(len(c) for c in heap) > 2:
        new: list[list[Bit]] = [[] for _ in range(len(heap) + 5)]
        avail = [sorted(c, key=_key) for c in heap] + [[] for _ in range(5)]
        progress = False
        for c in range(len(heap)):
            while len(avail[c]) >= 3:
                for a in avail[c:c + 3]:
                    a.sort(key=_key)
                outs = _best_counter(h, avail, c, budget, chain_limit)
                if not outs:
                    break
                progress = True
                # the sum bit waits for the next sweep, the carries go on in this one
                # while they are early enough, else they wait too
                new[c].append(outs[0])
                for j, o in enumerate(outs[1:], 1):
                    (avail if o[0] <= mix_limit else new)[c + j].append(o)
            new[c].extend(avail[c])
            avail[c] = []
        for c in range(len(heap), len(avail)):
            new[c].extend(avail[c])
        while new and not new[-1]:
            new.pop()
        if not progress:
            raise _OverBudget
        heap = new
    return heap


def _usable(col: list[Bit], limit: int) -> int:
    """Bits of a sorted column no later than ``limit``."""
    return sum(1 for t in col if t[0] <= limit)


def _best_counter(h: _Heap, avail: list[list[Bit]], c: int, budget: int,
                  chain_limit: int) -> list[Bit]:
    """Applies the counter at column ``c`` that removes the most bits per LUT and ends within
    ``budget``; returns its output bits (column ``c`` first), none if no counter fits."""
    best: tuple[float, int, tuple] | None = None
    n0, n1, n2 = (_usable(a, min(budget, chain_limit) - CHAIN_DELAY) for a in avail[c:c + 3])
    for ky in CHAINS:
        if n0 < ky:
            continue
        npos = ky.bit_length()
        extra = min(n0 - ky, 2)  # X_0 and cin from column c
        xhi = [min(nj, 1) for nj in (n1, n2)][:npos - 1]
        nin = ky + extra + sum(xhi)
        x_max = (1 if extra >= 1 else 0) + sum(v << (p + 1) for p, v in enumerate(xhi))
        nout = (x_max + ky + (extra >= 2)).bit_length()
        cand = ((nin - nout) / npos, -npos, ("chain", ky, extra, xhi))
        if best is None or cand[:2] > best[:2]:
            best = cand
    n0, n1 = (_usable(a, budget - LUT_DELAY) for a in avail[c:c + 2])
    for k1, k0, nout in GPCS:
        if n0 >= k0 and n1 >= k1:
            cand = ((k0 + k1 - nout) / nout, -nout, ("lut", k1, k0, nout))
            if best is None or cand[:2] > best[:2]:
                best = cand
    if best is None:
        return []
    op = best[2]
    if op[0] == "lut":
        _, k1, k0, nout = op
        lo, avail[c] = _take(avail[c], k0)
        hi, avail[c + 1] = _take(avail[c + 1], k1)

        def fn(v: int, k0: int = k0) -> int:
            return _count(v & ((1 << k0) - 1)) + 2 * _count(v >> k0)

        bits = lo + hi
        return h.lut([t[2] for t in bits], fn, nout, max(t[0] for t in bits) + LUT_DELAY)
    _, ky, extra, xhi = op
    ybits, avail[c] = _take(avail[c], ky)
    lowx, avail[c] = _take(avail[c], extra)
    xs: list[Value | None] = [lowx[0][2] if lowx else None]
    used = ybits + lowx
    for p, v in enumerate(xhi, 1):
        if v:
            xb, avail[c + p] = _take(avail[c + p], 1)
            xs.append(xb[0][2])
            used += xb
        else:
            xs.append(None)
    cin = lowx[1][2] if len(lowx) > 1 else None
    return h.chain([t[2] for t in ybits], _count, ky, xs, cin,
                   max(t[0] for t in used) + CHAIN_DELAY)


def _final(heap: list[list[Bit]]) -> Value:
    if not heap:
        return Const(0, 1)
    zero = Const(0, 1)
    a = Cat(*[c[0][2] if len(c) > 0 else zero for c in heap])
    b = Cat(*[c[1][2] if len(c) > 1 else zero for c in heap])
    if all(len(c) <= 1 for c in heap):
        return a
    return a + b


def _final_luts(heap: list[list[Bit]]) -> int:
    """LUTs of the final adder: one per position from the lowest column with two bits."""
    two = [c for c, col in enumerate(heap) if len(col) > 1]
    return len(heap) - two[0] if two else 0


#: the parameters :func:`_search` chose, by tree shape and budget
_CHOICES: dict[tuple, tuple[float, ...]] = {}  # (LUTs, delay, …, parameters)


def _search(build: Callable[..., list[list[Bit]]], m: Module | None, name: str,
            budget: int | None, shape: tuple, options: Sequence[int] = (0,),
            report: TreeDelay | None = None) -> Value:
    """Builds the tree ``build(heap, budget, chain_limit, mix_limit, option)`` with the fewest
    LUTs (then the smallest delay) within ``budget`` (default :data:`TREE_BUDGET`), or with
    the earliest budget that works when none does. Chain counters are used where they end by
    ``chain_limit``, carries join the sweep that made them while no later than ``mix_limit``;
    ``options`` are further choices of ``build``. Dry runs choose; the choice is cached by
    ``shape``; ``report`` gets the chosen tree's delay."""
    limit = TREE_BUDGET if budget is None else budget
    key = (shape, limit, tuple(options))
    if key not in _CHOICES:
        best: tuple[float, ...] | None = None
        b = limit
        while best is None:
            for opt in options:
                for cl in range(b + 1):
                    for ml in range(b + 1):
                        h = _Heap(None, name)
                        try:
                            heap = build(h, b, cl, ml, opt)
                        except _OverBudget:
                            continue
                        depth = max((t[0] for col in heap for t in col), default=0)
                        cost = h.luts + CHAIN_PENALTY * h.chain_luts + _final_luts(heap)
                        cand = (cost, depth, -cl, -ml, b, cl, ml, opt)
                        if best is None or cand < best:
                            best = cand
            b += 1
        _CHOICES[key] = best
    if report is not None:
        report.delay = max(report.delay, int(_CHOICES[key][1]))
    return _final(build(_Heap(m, name), *_CHOICES[key][4:]))


def compress_columns(m: Module, cols: list[list[Value]], name: str = "cmp",
                     budget: int | None = None,
                     delays: list[list[int]] | None = None,
                     report: TreeDelay | None = None) -> Value:
    """Sum of bit columns (column ``c`` has weight ``2**c``) as an unsigned value.

    Columns are reduced with LUT and chain counters (module docstring) until each holds at
    most two bits, every bit within ``budget`` (default :data:`TREE_BUDGET`) half-ns units of
    the operands where possible (``delays[c][i]``: when bit ``i`` of column ``c`` is ready,
    default 0); a final carry-chain adder adds the two rows. ``report`` (a
    :class:`TreeDelay`) gets the latest arrival before that adder.
    """
    ds = delays or [[0] * len(c) for c in cols]

    def build(h: _Heap, b: int, cl: int, ml: int, _: int) -> list[list[Bit]]:
        return _reduce(h, [[h.bit(v, t) for v, t in zip(c, dc, strict=True)]
                           for c, dc in zip(cols, ds, strict=True)], b, cl, ml)

    return _search(build, m, name, budget,
                   ("cols", tuple(tuple(sorted(dc)) for dc in ds)), report=report)


def chain_lane_pairs(n: int) -> int:
    """Lane pairs of an ``n``-lane XNOR-popcount that go into chain counters: each takes
    three column-0 bits and one column-1 bit of the 3-lane counters (which give one of each),
    so at most a third of the counters' column-0 bits: ``3·a + 2·b = n`` with ``b ≤ a/3``."""
    return max(0, n // 11) if n >= 11 else 0


def xnor_popcount(m: Module, x: Value, w: Value, name: str = "pc",
                  budget: int | None = None, report: TreeDelay | None = None) -> Value:
    """``popcount(~(x ^ w))`` of two equally wide bit vectors, unsigned, exact width
    ``len(x).bit_length()``.

    Most lanes are counted three at a time by two LUTs (column 0 and 1); ``b`` pairs of lanes
    (:func:`chain_lane_pairs`) go into chain counters ``X + (l_a + l_b + e) + cin`` fed by
    those counters' bits, the rest of the heap is reduced as by :func:`compress_columns`
    (``budget`` and ``report`` likewise).
    """
    n = len(x)
    if len(w) != n:
        raise ValueError(f"xnor_popcount: widths {len(x)} and {len(w)} differ")

    # the lanes' XNOR bits as one signal: Verilator computes it with a word operation and
    # gathers a counter's inputs as one slice (a six-input LUT of x and w bits gathered
    # bit by bit cost 3.5 % more CPU time per cycle on CNV-W1A1); Yosys maps each counter
    # output with its XNORs into one LUT6 as before (equal LUTs, bench/synth_mvtu.py)
    xn = Signal(n, name=f"{name}_xn")
    m.d.comb += xn.eq(~(x ^ w))

    def build(h: _Heap, budget: int, chain_limit: int, mix_limit: int,
              pairs: int) -> list[list[Bit]]:
        ncount = n - 2 * pairs  # lanes in 3-lane (and smaller) counters
        heap: list[list[Bit]] = [[], []]
        for i in range(0, ncount, 3):
            k = min(3, ncount - i)
            for j, o in enumerate(h.lut([xn[i:i + k]], _count,
                                        k.bit_length(), LUT_DELAY)):
                heap[j].append(o)
        for q in range(pairs):
            i = ncount + 2 * q
            heap[0].sort(key=_key)
            heap[1].sort(key=_key)
            (e, *low), heap[0] = _take(heap[0], 3)
            hi, heap[1] = _take(heap[1], 1)
            xs: list[Value | None] = [low[0][2] if low else None, hi[0][2] if hi else None]
            cin = low[1][2] if len(low) > 1 else None
            outs = h.chain([xn[i:i + 2], e[2]], _count, 3, xs, cin,
                           max(t[0] for t in [e, *low, *hi]) + CHAIN_DELAY)
            for j, o in enumerate(outs):
                while len(heap) <= j:
                    heap.append([])
                heap[j].append(o)
        return _reduce(h, heap, budget, chain_limit, mix_limit)

    total = _search(build, m, name, budget, ("xnor", n), sorted({0, chain_lane_pairs(n)}),
                    report)
    width = n.bit_length()
    return total[:width] if len(total) >= width else total
