"""Folding: how many processing elements (PE) and SIMD lanes each MVTU layer gets.

A folding is a :class:`Folding`: an immutable map from layer name to :class:`LayerFolding`
(``pe``, ``simd``; max-pool layers may carry a ``pe``), saved as the JSON file
``{layer: {"pe": P, "simd": S}}`` (max-pools: ``{"pe": P}``), optionally with a
``"placements"`` entry ``{layer: "onchip"|"stream"|"tiled"}`` for hybrid designs
(:func:`load_placements`; :func:`load_folding` skips it). :func:`apply_folding` puts
it on a copy of a network and validates it with :meth:`Network.infer`; :func:`auto_fold`
chooses one for a target frame rate, :func:`fold_for_budget` the fastest one that fits a
LUT/BRAM budget.

Auto-folding rule (per MVTU layer, independently, because the pipeline runs at the pace of
its slowest stage): among every ``(PE, SIMD)`` with ``PE | MH``, ``SIMD | MW`` (and
``SIMD | C_in`` for convolutions, as :mod:`lowbit_hdl.ir` requires), keep those whose layer
cycles (:func:`lowbit_hdl.cost.layer_cycles`, ``max(NF·SF·vectors, H·W·C/SIMD)``) are at
most the target cycles per frame, and whose output rate does not make a following max-pool
(which inherits the PE) exceed the target; take the one with the smallest estimated
resources (LUTs and BRAM as fractions of the device, the xc7z020 unless given, see
:mod:`lowbit_hdl.flow.resources`), ties broken by fewer PE·SIMD lanes and then by fewer
cycles. Every layer therefore meets the target with the least hardware, and no layer is
given more parallelism than the target needs (a balanced pipeline). When a layer cannot
reach the target even fully parallel, it gets its fastest folding and the result says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..cost import PLACEMENTS, layer_cycles, network_cost, pool_cycles
from ..ir import FC, Conv, LayerInfo, MaxPool, Network, NetworkError
from .resources import XC7Z020, Device, estimate_network, mvtu_resources

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
]

#: the keys of a folding file's layer entry
FOLDING_KEYS = ("pe", "simd")
#: the folding file's optional top-level entry ``{layer: placement}`` (hybrid designs)
PLACEMENTS_KEY = "placements"


@dataclass(frozen=True)
class LayerFolding:
    """PE and SIMD of one layer; ``None`` leaves the layer's own value.

    Raises ``TypeError`` for a value that is not an ``int`` and ``ValueError`` for one below 1.
    """

    pe: int | None = None
    simd: int | None = None

    def __post_init__(self) -> None:
        for key in FOLDING_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{key} must be an integer, got {value!r}")
            if value < 1:
                raise ValueError(f"{key} must be ≥ 1, got {value}")

    def to_json(self) -> dict[str, int]:
        """The set values, ``{"pe": P, "simd": S}`` (a folding file's layer entry)."""
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

    def to_json(self) -> dict[str, dict[str, int]]:
        """The folding file's JSON object ``{layer: {"pe": P, "simd": S}}``."""
        return {name: entry.to_json() for name, entry in self._layers.items()}


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n``, ascending."""
    if n < 1:
        raise ValueError(f"divisors: {n} must be ≥ 1")
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def get_folding(net: Network) -> Folding:
    """The folding currently set on ``net`` (MVTU layers, and max-pools with an explicit PE)."""
    out: dict[str, LayerFolding] = {}
    for lay in net.layers:
        if isinstance(lay, (Conv, FC)):
            out[lay.name] = LayerFolding(int(lay.pe), int(lay.simd))
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
    """An auto-folding: the folding, the folded network and how it meets the target."""

    folding: Folding
    network: Network
    target_cycles: int
    cycles_per_frame: int
    met: bool
    unmet_layers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"folding": self.folding.to_json(), "target_cycles": self.target_cycles,
                "cycles_per_frame": self.cycles_per_frame, "met": self.met,
                "unmet_layers": list(self.unmet_layers)}


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


def auto_fold(net: Network, target: int, *, device: Device = XC7Z020, lut_weight: float = 1.0,
              bram_weight: float = 1.0) -> FoldingResult:
    """Choose PE/SIMD for every MVTU layer so that each needs at most ``target`` cycles/frame.

    See the module docstring for the rule. ``lut_weight``/``bram_weight`` weigh the two
    resource fractions of ``device`` in the cost being minimised. Max-pool layers without an
    explicit PE follow their producer's PE and are counted as constraints on it.
    """
    if target < 1:
        raise ValueError(f"target cycles per frame must be ≥ 1, got {target}")
    # a valid starting point: every layer fully folded
    work = apply_folding(net, Folding({lay.name: LayerFolding(1, 1) for lay in net.layers
                                       if isinstance(lay, (Conv, FC))}))
    infos = work.infer()
    folding: dict[str, LayerFolding] = {}
    unmet: list[str] = []
    for i, info in enumerate(infos):
        if not info.is_mvtu:
            continue
        pool = _next_pool(infos, i)

        def cycles(pe: int, simd: int, info=info, pool=pool) -> int:
            cyc = layer_cycles(info, pe, simd)
            if pool is not None:
                cyc = max(cyc, pool_cycles(pool.in_shape, pe, pool.layer.kernel,
                                           pool.layer.stride, pool.pads))
            return cyc

        def cost(ps: tuple[int, int], info=info) -> tuple[float, int, int]:
            r = mvtu_resources(info, ps[0], ps[1])
            frac = lut_weight * r.lut / device.lut + bram_weight * r.bram36 / device.bram36
            return (round(frac, 9), ps[0] * ps[1], cycles(*ps))

        cands = _candidates(info)
        ok = [ps for ps in cands if cycles(*ps) <= target]
        if ok:
            pe, simd = min(ok, key=cost)
        else:
            unmet.append(info.name)
            pe, simd = min(cands, key=lambda ps: (cycles(*ps), cost(ps)))
        folding[info.name] = LayerFolding(pe, simd)
    chosen = Folding(folding)
    folded = apply_folding(net, chosen)
    cpf = network_cost(folded).cycles_per_frame
    return FoldingResult(chosen, folded, target, cpf, not unmet and cpf <= target, unmet)


def fold_for_budget(net: Network, lut_budget: int | None = None,
                    bram36_budget: float | None = None, *, device: Device = XC7Z020
                    ) -> FoldingResult:
    """The fastest auto-folding whose analytic estimate fits the given LUT/BRAM36 budget.

    Binary search over the per-layer reachable cycle counts (resources fall as the target
    rises); ``device`` is passed to :func:`auto_fold`. Raises :class:`NetworkError` if even
    the slowest folding does not fit.
    """
    if lut_budget is None and bram36_budget is None:
        raise ValueError("fold_for_budget: give a LUT and/or a BRAM36 budget")
    infos = net.infer()
    values: set[int] = set()
    for info in infos:
        if info.is_mvtu:
            values.update(layer_cycles(info, pe, s) for pe, s in _candidates(info))
    targets = sorted(values)

    def fits(res: FoldingResult) -> bool:
        est = estimate_network(res.network).total
        return ((lut_budget is None or est.lut <= lut_budget)
                and (bram36_budget is None or est.bram36 <= bram36_budget))

    lo, hi = 0, len(targets) - 1
    best = auto_fold(net, targets[hi], device=device)
    if not fits(best):
        est = estimate_network(best.network).total
        raise NetworkError(f"network {net.name}: even the slowest folding needs "
                           f"{est.lut:,} LUT / {est.bram36:g} BRAM36, over the budget")
    while lo < hi:
        mid = (lo + hi) // 2
        res = auto_fold(net, targets[mid], device=device)
        if fits(res):
            best, hi = res, mid
        else:
            lo = mid + 1
    return best
