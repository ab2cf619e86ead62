"""Folding: how many processing elements (PE) and SIMD lanes each MVTU layer gets, and how
its weight memories are built.

A folding is a :class:`Folding`: an immutable map from layer name to :class:`LayerFolding`
(``pe``, ``simd``, ``ram_style``; max-pool layers may carry a ``pe``), saved as the JSON
file ``{layer: {"pe": P, "simd": S, "ram_style": M}}`` (``ram_style`` optional; max-pools:
``{"pe": P}``), optionally with a ``"placements"`` entry ``{layer: "onchip"|"stream"|"tiled"}``
for hybrid designs (:func:`load_placements`; :func:`load_folding` skips it).
:func:`apply_folding` puts it on a copy of a network and validates it with
:meth:`Network.infer`.

The auto-folder, :func:`search`, searches foldings and weight-memory styles
(:data:`MEMORY_CHOICES`) together and keeps the Pareto front of (cycles, LUT, BRAM36, DSP)
(:class:`DesignSpace`); :func:`auto_fold` takes its least-cost design for a target cycle
count, :func:`fold_for_budget` its fastest design within a LUT and/or BRAM36 budget (and the
part), or raises :class:`~lowbit_hdl.errors.BudgetError` naming the cheapest design. The
cost (:meth:`DesignSpace.cost`) is the resources as fractions of the part,
``LUT/LUT_part + BRAM36/BRAM36_part + DSP/DSP_part``; the limits are the part less the Zynq
shell. docs/build.md ("Folding and auto-folding") describes the search.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..cost import PLACEMENTS, layer_cycles, network_cost, pool_cycles
from ..errors import BudgetError
from ..ir import FC, RAM_STYLES, Conv, LayerInfo, MaxPool, Network, NetworkError
from .resources import (
    SHELL,
    XC7Z020,
    Device,
    Resources,
    estimate_network,
    mvtu_resources,
    pool_resources,
    window_resources,
)

__all__ = [
    "LayerFolding",
    "Folding",
    "FoldingResult",
    "divisors",
    "get_folding",
    "apply_folding",
    "load_folding",
    "load_placements",
    "save_folding",
    "auto_fold",
    "fold_for_budget",
    "target_cycles",
    "MEMORY_CHOICES",
    "LayerOption",
    "layer_options",
    "Design",
    "DesignSpace",
    "pareto_front",
    "search",
]

#: the keys of a folding file's layer entry
FOLDING_KEYS = ("pe", "simd", "ram_style")
#: the folding file's optional top-level entry ``{layer: placement}`` (hybrid designs)
PLACEMENTS_KEY = "placements"


@dataclass(frozen=True)
class LayerFolding:
    """PE, SIMD and weight-memory style of one layer; ``None`` leaves the layer's own value.

    ``ram_style`` is one of :data:`lowbit_hdl.ir.RAM_STYLES` (the layer's ``ram_style``: how
    its weight memories are built). Raises ``TypeError`` for a PE/SIMD that is not an ``int``
    or a style that is not a ``str``, and ``ValueError`` for a count below 1 or an unknown
    style.
    """

    pe: int | None = None
    simd: int | None = None
    ram_style: str | None = None

    def __post_init__(self) -> None:
        if self.ram_style is not None:
            if not isinstance(self.ram_style, str):
                raise TypeError(f"ram_style must be a string, got {self.ram_style!r}")
            if self.ram_style not in RAM_STYLES:
                raise ValueError(f"ram_style={self.ram_style!r} must be one of "
                                 f"{', '.join(RAM_STYLES)}")
        for key in ("pe", "simd"):
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{key} must be an integer, got {value!r}")
            if value < 1:
                raise ValueError(f"{key} must be ≥ 1, got {value}")

    def to_json(self) -> dict[str, int | str]:
        """The set values, ``{"pe": P, "simd": S, "ram_style": M}`` (a folding file's layer
        entry)."""
        return {k: getattr(self, k) for k in FOLDING_KEYS if getattr(self, k) is not None}


class Folding(Mapping[str, LayerFolding]):
    """An immutable folding: layer name → :class:`LayerFolding`, in network order.

    Compares equal to another :class:`Folding` with the same entries (in any order).
    :meth:`from_json`/:meth:`to_json` convert from/to the folding file's JSON object.
    """

    __slots__ = ("_layers",)

    def __init__(self, layers: Mapping[str, LayerFolding] | None = None) -> None:
        entries = dict(layers or {})
        for name, entry in entries.items():
            if not isinstance(name, str):
                raise TypeError(f"folding: layer names are strings, got {name!r}")
            if not isinstance(entry, LayerFolding):
                raise TypeError(f"folding: layer {name}: expected a LayerFolding, got "
                                f"{type(entry).__name__}")
        object.__setattr__(self, "_layers", MappingProxyType(entries))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Folding is immutable")

    def __getitem__(self, name: str) -> LayerFolding:
        return self._layers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Folding):
            return NotImplemented
        return dict(self._layers) == dict(other._layers)

    def __hash__(self) -> int:
        return hash(frozenset(self._layers.items()))

    def __repr__(self) -> str:
        return f"Folding({dict(self._layers)!r})"

    @classmethod
    def from_json(cls, data: object, source: str = "folding") -> Folding:
        """The folding of a JSON object ``{layer: {"pe": P, "simd": S}}``.

        Raises :class:`NetworkError` (prefixed with ``source``, naming the layer and the
        rule) for anything else.
        """
        if not isinstance(data, Mapping) or not all(isinstance(v, Mapping)
                                                     for v in data.values()):
            raise NetworkError(f"{source}: expected {{layer: {{\"pe\": P, \"simd\": S}}}}")
        layers = {}
        for name, entry in data.items():
            for key in entry:
                if key not in FOLDING_KEYS:
                    raise NetworkError(f"{source}: layer {name}: unknown key {key!r} "
                                       f"(allowed: {', '.join(FOLDING_KEYS)})")
            try:
                layers[str(name)] = LayerFolding(**entry)
            except (TypeError, ValueError) as e:
                raise NetworkError(f"{source}: layer {name}: {e}") from None
        return cls(layers)

    def to_json(self) -> dict[str, dict[str, int | str]]:
        """The folding file's JSON object ``{layer: {"pe": P, "simd": S}}`` (plus
        ``"ram_style"`` where set)."""
        return {name: entry.to_json() for name, entry in self._layers.items()}


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n``, ascending."""
    if n < 1:
        raise ValueError(f"divisors: {n} must be ≥ 1")
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def get_folding(net: Network) -> Folding:
    """The folding currently set on ``net`` (MVTU layers with their ``ram_style`` unless
    ``"auto"``, and max-pools with an explicit PE)."""
    out: dict[str, LayerFolding] = {}
    for lay in net.layers:
        if isinstance(lay, (Conv, FC)):
            out[lay.name] = LayerFolding(int(lay.pe), int(lay.simd),
                                         None if lay.ram_style == "auto" else lay.ram_style)
        elif isinstance(lay, MaxPool) and lay.pe is not None:
            out[lay.name] = LayerFolding(int(lay.pe))
    return Folding(out)


def apply_folding(net: Network, folding: Folding) -> Network:
    """A copy of ``net`` with ``folding`` applied, validated with :meth:`Network.infer`.

    Raises :class:`NetworkError` for unknown layers, keys that the layer does not have, or a
    folding that breaks a divisibility rule (the message names the layer and the rule), and
    ``TypeError`` when ``folding`` is not a :class:`Folding`.
    """
    if not isinstance(folding, Folding):
        raise TypeError(f"apply_folding: expected a Folding (Folding.from_json reads a JSON "
                        f"object), got {type(folding).__name__}")
    out = net.copy()
    index = {lay.name: i for i, lay in enumerate(out.layers)}
    for name, entry in folding.items():
        if name not in index:
            raise NetworkError(f"folding: network {net.name} has no layer {name!r}")
        lay = out.layers[index[name]]
        allowed = FOLDING_KEYS if isinstance(lay, (Conv, FC)) else \
            ("pe",) if isinstance(lay, MaxPool) else ()
        values = entry.to_json()
        for key in values:
            if key not in allowed:
                raise NetworkError(f"folding: layer {name} ({lay.kind}) has no {key!r} "
                                   f"(allowed: {', '.join(allowed) or 'none'})")
        out.layers[index[name]] = dataclasses.replace(lay, **values)
    out.infer()
    return out


def save_folding(folding: Folding, path: str | Path) -> Path:
    """Write a folding as JSON (sorted keys, stable across runs)."""
    if not isinstance(folding, Folding):
        raise TypeError(f"save_folding: expected a Folding, got {type(folding).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(folding.to_json(), indent=2, sort_keys=True) + "\n")
    return path


def _read_folding_file(path: str | Path) -> dict:
    """The JSON object of a folding file (errors as :func:`load_folding` describes)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"folding file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NetworkError(f"folding file {path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise NetworkError(f"folding file {path}: expected {{layer: {{\"pe\": P, \"simd\": S}}}}")
    return data


def load_folding(path: str | Path) -> Folding:
    """Read a folding JSON file: ``{layer: {"pe": P, "simd": S}}``.

    A top-level ``"placements"`` entry (read by :func:`load_placements`) is skipped, so a
    layer cannot be named ``placements`` in a folding file. Raises ``FileNotFoundError`` when
    the file does not exist and :class:`NetworkError` (naming the file, the layer and the
    rule) when it is not a valid folding.
    """
    data = _read_folding_file(path)
    data.pop(PLACEMENTS_KEY, None)
    return Folding.from_json(data, f"folding file {path}")


def load_placements(path: str | Path) -> dict[str, str]:
    """The ``"placements"`` entry of a folding file, ``{layer: placement}`` (``{}`` without).

    Each placement is one of :data:`lowbit_hdl.cost.PLACEMENTS`; whether it suits the layer
    (``stream`` for FC, ``tiled`` for Conv) is checked against the network by the caller.
    Raises ``FileNotFoundError`` and :class:`NetworkError` as :func:`load_folding` does.
    """
    data = _read_folding_file(path)
    entry = data.get(PLACEMENTS_KEY, {})
    source = f"folding file {path}: {PLACEMENTS_KEY}"
    if not isinstance(entry, dict):
        raise NetworkError(f"{source}: expected {{layer: placement}}")
    for name, placement in entry.items():
        if placement not in PLACEMENTS:
            raise NetworkError(f"{source}: layer {name}: {placement!r} is not a placement "
                               f"({', '.join(PLACEMENTS)})")
    return dict(entry)


def target_cycles(clock_mhz: float, fps: float) -> int:
    """Largest whole number of cycles per frame that still reaches ``fps`` at the clock."""
    if fps <= 0 or clock_mhz <= 0:
        raise ValueError("target frames/s and clock must be positive")
    cycles = clock_mhz * 1e6 / fps * (1 + 1e-12)
    # a frame rate so low that no folding misses it (the quotient may even overflow)
    return max(1, math.floor(cycles)) if cycles < 2 ** 62 else 2 ** 62


@dataclass
class FoldingResult:
    """An auto-folding: the folding (PE, SIMD and weight-memory style per layer), the folded
    network, how it meets the target, and its estimate."""

    folding: Folding
    network: Network
    target_cycles: int
    cycles_per_frame: int
    met: bool
    unmet_layers: list[str] = field(default_factory=list)
    estimate: Resources = field(default_factory=Resources)
    fits_part: bool = True

    def to_dict(self) -> dict:
        return {"folding": self.folding.to_json(), "target_cycles": self.target_cycles,
                "cycles_per_frame": self.cycles_per_frame, "met": self.met,
                "unmet_layers": list(self.unmet_layers),
                "memory": {n: e.ram_style for n, e in self.folding.items() if e.ram_style},
                "estimate": self.estimate.to_dict(), "fits_part": self.fits_part}


def _next_pool(infos: list[LayerInfo], i: int) -> LayerInfo | None:
    """The max-pool right after layer ``i`` that inherits its PE, if any."""
    if i + 1 < len(infos):
        nxt = infos[i + 1]
        if isinstance(nxt.layer, MaxPool) and nxt.layer.pe is None:
            return nxt
    return None


def _candidates(info: LayerInfo) -> list[tuple[int, int]]:
    simds = divisors(info.mw)
    if isinstance(info.layer, Conv):
        simds = [s for s in simds if info.in_shape[0] % s == 0]
    return [(pe, s) for pe in divisors(info.mh) for s in simds]


# -- the design-space search -----------------------------------------------------------------

#: the weight-memory styles the search tries for a Conv/FC layer whose weights are a real
#: memory (more than one word per PE): block RAM or LUT logic. LUT-RAM ("distributed") is not
#: tried: Yosys has no LUT-RAM mapping for a ROM (it fails with "no valid mapping found"), and
#: a LUT ROM is what Vivado's distributed ROM builds anyway.
MEMORY_CHOICES = ("block", "logic")


@dataclass(frozen=True)
class LayerOption:
    """One way to build a Conv/FC layer: PE, SIMD, weight-memory style, the layer's cycles
    per frame (with the max-pool that inherits its PE) and its estimate (MVTU, sliding window
    and that max-pool)."""

    pe: int
    simd: int
    ram_style: str
    cycles: int
    res: Resources


def layer_options(info: LayerInfo, pool: LayerInfo | None = None,
                  ram_style: str | None = None) -> list[LayerOption]:
    """Every (PE, SIMD, style) of an MVTU layer with its cycles and estimate.

    ``ram_style`` fixes the style (default: the layer's own when it is not ``"auto"``, else
    each of :data:`MEMORY_CHOICES`; a folding with one weight word per PE has no memory and
    keeps ``"auto"``). ``pool``: the max-pool that follows and inherits the PE.
    """
    lay = info.layer
    fixed = ram_style if ram_style is not None else \
        (lay.ram_style if lay.ram_style != "auto" else None)
    out = []
    for pe, simd in _candidates(info):
        cyc = layer_cycles(info, pe, simd)
        base = Resources()
        if isinstance(lay, Conv):
            base += window_resources(dataclasses.replace(
                info, layer=dataclasses.replace(lay, pe=pe, simd=simd)))
        if pool is not None:
            cyc = max(cyc, pool_cycles(pool.in_shape, pe, pool.layer.kernel,
                                       pool.layer.stride, pool.pads))
            base += pool_resources(pool, pe)
        words = (info.mh // pe) * (info.mw // simd)
        styles = (fixed,) if fixed is not None else \
            ("auto",) if words == 1 else MEMORY_CHOICES
        for style in styles:
            out.append(LayerOption(pe, simd, style, cyc,
                                   base + mvtu_resources(info, pe, simd, ram_style=style)))
    return out


@dataclass(frozen=True)
class Design:
    """A design the search saw: its folding, cycles per frame and the search's estimate
    (the layer options' estimates plus the rest of the pipeline as estimated for a
    reference design, see :func:`search`)."""

    folding: Folding
    cycles: int
    res: Resources

    def key(self) -> tuple[int, int, float, int]:
        """The figures it is compared on: (cycles, LUT, BRAM36, DSP)."""
        return (self.cycles, self.res.lut, self.res.bram36, self.res.dsp)

    def dominates(self, other: Design) -> bool:
        """At most ``other``'s cycles, LUT, BRAM36 and DSP, and less in one of them."""
        a, b = self.key(), other.key()
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    def to_dict(self) -> dict:
        return {"cycles_per_frame": self.cycles, **self.res.to_dict(),
                "folding": self.folding.to_json()}


def pareto_front(designs: list[Design]) -> list[Design]:
    """The designs no other one dominates, by cycles (then LUT), duplicates dropped."""
    out: list[Design] = []
    front = np.empty((0, 3))
    for d in sorted(designs, key=lambda d: d.key()):
        if out and out[-1].key() == d.key():
            continue
        row = np.array([d.res.lut, d.res.bram36, d.res.dsp], dtype=float)
        # every design in the front has at most d's cycles (sorted); equal figures with
        # equal cycles were dropped above, so "all ≤" means dominated
        if len(out) and bool(np.any(np.all(front <= row, axis=1))):
            continue
        out.append(d)
        front = np.vstack([front, row])
    return out


@dataclass
class DesignSpace:
    """What :func:`search` found for a network: every design it kept, their Pareto front of
    (cycles, LUT, BRAM36, DSP), the cost it minimises and the part's limits.

    The cost of a design is ``lut_weight·LUT/LUT_part + bram_weight·BRAM36/BRAM36_part +
    DSP/DSP_part`` (its resources as fractions of the part); the limits are the part's
    capacity less the Zynq shell (:data:`lowbit_hdl.flow.resources.SHELL`). A design is
    chosen on the search's estimate and then estimated exactly
    (:func:`lowbit_hdl.flow.resources.estimate_network`, :meth:`exact`); budgets and limits
    are checked on the exact figures.
    """

    network: Network
    device: Device
    designs: list[Design]
    front: list[Design]
    limits: Resources
    lut_weight: float = 1.0
    bram_weight: float = 1.0
    min_layer_cycles: dict[str, int] = field(default_factory=dict)
    _exact: dict[Folding, Design] = field(default_factory=dict, repr=False)

    def cost(self, res: Resources) -> float:
        """The documented cost of an estimate (fractions of the part, weighted)."""
        d = self.device
        return round(self.lut_weight * res.lut / d.lut + self.bram_weight * res.bram36
                     / d.bram36 + (res.dsp / d.dsp if d.dsp else 0.0), 12)

    def within(self, res: Resources, lut_budget: float | None = None,
               bram36_budget: float | None = None) -> bool:
        """``res`` is within the part's limits (LUT, BRAM36, DSP) and the budgets."""
        lim = self.limits
        return (res.lut <= lim.lut and res.bram36 <= lim.bram36 and res.dsp <= lim.dsp
                and (lut_budget is None or res.lut <= lut_budget)
                and (bram36_budget is None or res.bram36 <= bram36_budget))

    def exact(self, design: Design) -> Design:
        """``design`` with the cycles of :func:`lowbit_hdl.cost.network_cost` and the
        estimate of :func:`lowbit_hdl.flow.resources.estimate_network` of its network."""
        if design.folding not in self._exact:
            folded = apply_folding(self.network, design.folding)
            self._exact[design.folding] = Design(
                design.folding, network_cost(folded).cycles_per_frame,
                estimate_network(folded).total)
        return self._exact[design.folding]

    def cheapest(self) -> Design:
        """The design of least cost (then fewest cycles) the search saw, estimated exactly."""
        return self.exact(min(self.front, key=lambda d: (self.cost(d.res), d.cycles)))

    def _best(self, reach: list[Design], lut_budget: float | None = None,
              bram36_budget: float | None = None) -> Design | None:
        """The least exact cost among the first :data:`_EXACT_PICK` of ``reach`` (by the
        search's cost) that are within the limits and budgets, exactly estimated."""
        ranked = sorted(reach, key=lambda d: (self.cost(d.res), d.cycles))
        ok = [d for d in ranked[:_EXACT_TRIES] if self.within(d.res, lut_budget,
                                                               bram36_budget)]
        exact = [e for e in (self.exact(d) for d in ok[:_EXACT_PICK])
                 if self.within(e.res, lut_budget, bram36_budget)]
        if not exact:
            exact = [e for e in (self.exact(d) for d in ok[_EXACT_PICK:])
                     if self.within(e.res, lut_budget, bram36_budget)][:1]
        return min(exact, key=lambda d: (self.cost(d.res), d.cycles)) if exact else None

    def for_target(self, target: int) -> Design:
        """The least-cost design with at most ``target`` cycles per frame within the part's
        limits (if none is within them: the least-cost one); when no design reaches the
        target, the same among the fastest designs. Estimated exactly."""
        reach = [d for d in self.front if d.cycles <= target]
        if not reach:
            fastest = min(d.cycles for d in self.front)
            reach = [d for d in self.front if d.cycles == fastest]
        best = self._best(reach)
        return best if best is not None else \
            self.exact(min(reach, key=lambda d: (self.cost(d.res), d.cycles)))

    def for_budget(self, lut_budget: float | None = None,
                   bram36_budget: float | None = None) -> Design:
        """The fastest design within the budgets and the part's limits (then the least
        cost), exactly estimated. Raises :class:`~lowbit_hdl.errors.BudgetError` naming the
        cheapest design when there is none."""
        ok = sorted((d for d in self.front if self.within(d.res, lut_budget, bram36_budget)),
                    key=lambda d: (d.cycles, self.cost(d.res)))
        for d in ok[:_EXACT_TRIES]:
            if self.within(self.exact(d).res, lut_budget, bram36_budget):
                fastest = self.exact(d).cycles
                best = self._best([e for e in ok if e.cycles <= fastest], lut_budget,
                                  bram36_budget)
                return best if best is not None and best.cycles <= fastest else self.exact(d)
        c = self.cheapest()
        what = " and ".join(x for x in (
            f"{lut_budget:,} LUT" if lut_budget is not None else "",
            f"{bram36_budget:g} BRAM36" if bram36_budget is not None else "") if x) \
            or "the part"
        raise BudgetError(
            f"network {self.network.name}: no folding fits {what} on {self.device.part} "
            f"(its limits less the shell: {self.limits.lut:,} LUT, {self.limits.bram36:g} "
            f"BRAM36, {self.limits.dsp} DSP); the cheapest design needs {c.res.lut:,} LUT, "
            f"{c.res.bram36:g} BRAM36, {c.res.dsp} DSP at {c.cycles:,} cycles per frame",
            c.to_dict())


#: candidates a choice estimates exactly before it gives up (the search's estimate and the
#: exact one differ only in the FIFOs and width converters, a few hundred LUTs)
_EXACT_TRIES = 64
#: of the cheapest candidates by the search's estimate, this many are estimated exactly and
#: the cheapest of those is taken
_EXACT_PICK = 8


def _prune(opts: list[LayerOption], target: int, weight: Callable[[Resources], float]
           ) -> list[int]:
    """Indices of the options within ``target`` cycles that no other one beats in
    (LUT-side cost, BRAM36): the least cost per BRAM level (ties to fewer cycles), and only
    levels that lower the cost."""
    best: dict[float, int] = {}
    for k, o in enumerate(opts):
        if o.cycles > target:
            continue
        cur = best.get(o.res.bram36)
        if cur is None or (weight(o.res), o.cycles) < (weight(opts[cur].res), opts[cur].cycles):
            best[o.res.bram36] = k
    out, low = [], math.inf
    for b in sorted(best):
        if weight(opts[best[b]].res) < low:
            low = weight(opts[best[b]].res)
            out.append(best[b])
    return out


#: the last searches (their inputs → result): a build and the tests ask about one network
#: several times
_SEARCHES: OrderedDict[tuple, DesignSpace] = OrderedDict()
_SEARCHES_KEPT = 8


def search(net: Network, *, device: Device = XC7Z020, lut_weight: float = 1.0,
           bram_weight: float = 1.0, memory: Mapping[str, str] | None = None) -> DesignSpace:
    """Search foldings and weight-memory styles of ``net`` together (cached: the result
    depends on the layers' structure, not on their weights).

    For every reachable target ``T`` (each cycle count some layer option has), a dynamic
    programme over the layers finds, for each block-RAM count (in 18-Kbit halves, up to twice
    the part's), the design of least LUT-side cost (``lut_weight·LUT/LUT_part +
    DSP/DSP_part``) whose layers all take at most ``T`` cycles. Layer options come from
    :func:`layer_options` (estimates of the MVTU, sliding window and inherited max-pool,
    which add up over layers). The designs of all targets are merged, their Pareto front of
    (cycles, LUT, BRAM36, DSP) by that sum is estimated exactly (FIFOs and width converters
    included, :func:`lowbit_hdl.flow.resources.estimate_network`), and the front of the
    exact figures is kept.

    ``memory`` fixes the style of the named layers (``{layer: ram_style}``).
    Raises :class:`NetworkError` for a layer in ``memory`` that is not a Conv/FC layer.
    """
    memory = dict(memory or {})
    key = (net.input_shape, repr(net.input_dtype), repr(net.layers), device, lut_weight,
           bram_weight, tuple(sorted(memory.items())))
    if key in _SEARCHES:
        _SEARCHES.move_to_end(key)
        return _SEARCHES[key]
    space = _search(net, device, lut_weight, bram_weight, memory)
    _SEARCHES[key] = space
    while len(_SEARCHES) > _SEARCHES_KEPT:
        _SEARCHES.popitem(last=False)
    return space


def check_memory(net: Network, memory: Mapping[str, str]) -> None:
    """Check a ``{layer: weight-memory style}`` override: every name a Conv/FC layer of
    ``net``, every style one of ``RAM_STYLES``; a :class:`NetworkError` names the first
    that is not."""
    names = [i.name for i in net.infer() if i.is_mvtu]
    for name, style in memory.items():
        if name not in names:
            raise NetworkError(f"memory: {name!r} is not a Conv or FC layer of {net.name} "
                               f"(those are: {', '.join(names)})")
        if style not in RAM_STYLES:
            raise NetworkError(f"memory: layer {name}: {style!r} is not a style "
                               f"({', '.join(RAM_STYLES)})")


def _search(net: Network, device: Device, lut_weight: float, bram_weight: float,
            memory: dict[str, str]) -> DesignSpace:
    # a valid starting point: every layer fully folded
    work = apply_folding(net, Folding({lay.name: LayerFolding(1, 1) for lay in net.layers
                                       if isinstance(lay, (Conv, FC))}))
    infos = work.infer()
    mvtu = [i for i, info in enumerate(infos) if info.is_mvtu]
    names = [infos[i].name for i in mvtu]
    check_memory(net, memory)
    options = [layer_options(infos[i], _next_pool(infos, i), memory.get(infos[i].name))
               for i in mvtu]

    def side(r: Resources) -> float:
        return lut_weight * r.lut / device.lut + (r.dsp / device.dsp if device.dsp else 0.0)

    def halves_of(o: LayerOption) -> int:
        return int(round(2 * o.res.bram36))

    halves = 4 * device.bram36 + 1  # BRAM18 halves up to twice the part
    t0 = max((min(o.cycles for o in opts) for opts in options), default=0)
    targets = sorted({o.cycles for opts in options for o in opts if o.cycles >= t0}) or [t0]
    picked: dict[tuple[int, ...], tuple[int, Resources]] = {}
    for target in targets:
        # value[h]: the least LUT-side cost of the layers so far using h BRAM18 halves
        value = np.full(halves, np.inf)
        value[0] = 0.0
        steps = []  # per layer: its candidate option indices and the choice per h
        for opts in options:
            cand = _prune(opts, target, side)
            table = np.full((len(cand), halves), np.inf)
            for row, k in enumerate(cand):
                h = halves_of(opts[k])
                if h < halves:
                    table[row, h:] = value[:halves - h] + side(opts[k].res)
            choice = np.argmin(table, axis=0)
            value = table[choice, np.arange(halves)]
            steps.append((cand, choice))
        keys = []
        low = math.inf
        for b in range(halves):  # each BRAM count that lowers the cost is a design
            if not value[b] < low:
                continue
            low = value[b]
            key, h = [], b
            for opts, (cand, choice) in zip(reversed(options), reversed(steps), strict=True):
                k = cand[int(choice[h])]
                key.append(k)
                h -= halves_of(opts[k])
            keys.append(key[::-1])
        # and the least-cost design whatever its block RAM (beyond the programme's range
        # for networks far larger than the part)
        keys.append([min(cand, key=lambda k, opts=opts: (side(opts[k].res) + bram_weight
                                                         * opts[k].res.bram36 / device.bram36,
                                                         opts[k].cycles))
                     for opts, (cand, _) in zip(options, steps, strict=True)])
        for key in keys:
            if tuple(key) not in picked:
                chosen = [opts[k] for opts, k in zip(options, key, strict=True)]
                res = Resources()
                for o in chosen:
                    res += o.res
                picked[tuple(key)] = (max((o.cycles for o in chosen), default=0), res)
    # the rest of the pipeline (FIFOs, width converters, I/O), as estimated for the
    # cheapest design by the layer sum
    ref_key = min(picked, key=lambda k: (side(picked[k][1]) + bram_weight * picked[k][1].bram36
                                         / device.bram36, picked[k][0]))
    designs = [Design(_folding(names, options, key), cyc, res) for key, (cyc, res)
               in picked.items()]
    ref = next(d for d, key in zip(designs, picked, strict=True) if key == ref_key)
    folded = apply_folding(net, ref.folding)
    rest = estimate_network(folded).total - ref.res
    searched = set(names) | {p.name for p in (_next_pool(infos, i) for i in mvtu) if p}
    fixed_cycles = max((c.cycles for c in network_cost(folded).layers
                        if c.name not in searched), default=0)
    designs = [Design(d.folding, max(d.cycles, fixed_cycles), d.res + rest) for d in designs]
    limits = Resources(device.lut - SHELL.lut, device.ff - SHELL.ff,
                       device.bram36 - SHELL.bram36, device.dsp - SHELL.dsp)
    return DesignSpace(net, device, designs, pareto_front(designs), limits, lut_weight,
                       bram_weight, {infos[i].name: min(o.cycles for o in opts)
                                     for i, opts in zip(mvtu, options, strict=True)})


def _folding(names: list[str], options: list[list[LayerOption]], key: tuple[int, ...]
             ) -> Folding:
    """The folding of one option per layer (``key``: the option indices)."""
    out = {}
    for name, opts, k in zip(names, options, key, strict=True):
        o = opts[k]
        out[name] = LayerFolding(o.pe, o.simd, None if o.ram_style == "auto" else o.ram_style)
    return Folding(out)


def _result(net: Network, space: DesignSpace, design: Design, target: int) -> FoldingResult:
    folded = apply_folding(net, design.folding)
    unmet = [n for n, c in space.min_layer_cycles.items() if c > target]
    return FoldingResult(design.folding, folded, target, design.cycles,
                         not unmet and design.cycles <= target, unmet, design.res,
                         space.within(design.res))


def auto_fold(net: Network, target: int, *, device: Device = XC7Z020, lut_weight: float = 1.0,
              bram_weight: float = 1.0, memory: Mapping[str, str] | None = None,
              space: DesignSpace | None = None) -> FoldingResult:
    """The least-cost folding and weight-memory styles with at most ``target`` cycles/frame.

    See :func:`search` and :meth:`DesignSpace.for_target` (``space``: a search already done
    for ``net``). ``lut_weight``/``bram_weight`` weigh the resource fractions of ``device``
    in the cost; ``memory`` fixes layers' styles. Max-pool layers without an explicit PE
    follow their producer's PE and are counted as constraints on it. When the target cannot
    be reached, the result is the cheapest of the fastest designs and names the layers that
    cannot reach it (``unmet_layers``).
    """
    if target < 1:
        raise ValueError(f"target cycles per frame must be ≥ 1, got {target}")
    space = space or search(net, device=device, lut_weight=lut_weight,
                            bram_weight=bram_weight, memory=memory)
    return _result(net, space, space.for_target(target), target)


def fold_for_budget(net: Network, lut_budget: int | None = None,
                    bram36_budget: float | None = None, *, device: Device = XC7Z020,
                    memory: Mapping[str, str] | None = None,
                    space: DesignSpace | None = None) -> FoldingResult:
    """The fastest folding and weight-memory styles whose estimate fits the LUT and/or
    BRAM36 budget and the part (:meth:`DesignSpace.for_budget`).

    Raises ``ValueError`` without a budget and :class:`~lowbit_hdl.errors.BudgetError`
    (naming the cheapest design) when no design fits.
    """
    if lut_budget is None and bram36_budget is None:
        raise ValueError("fold_for_budget: give a LUT and/or a BRAM36 budget")
    space = space or search(net, device=device, memory=memory)
    design = space.for_budget(lut_budget, bram36_budget)
    return _result(net, space, design, design.cycles)
