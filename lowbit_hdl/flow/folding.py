"""Folding: how many processing elements (PE) and SIMD lanes each MVTU layer gets.

A folding is a plain mapping ``{layer name: {"pe": P, "simd": S}}`` (max-pool layers may
carry ``{"pe": P}``), saved as JSON. :func:`apply_folding` puts it on a copy of a network and
validates it with :meth:`Network.infer`; :func:`auto_fold` chooses one for a target frame
rate, :func:`fold_for_budget` the fastest one that fits a LUT/BRAM budget.

Auto-folding rule (per MVTU layer, independently, because the pipeline runs at the pace of
its slowest stage): among every ``(PE, SIMD)`` with ``PE | MH``, ``SIMD | MW`` (and
``SIMD | C_in`` for convolutions, as :mod:`lowbit_hdl.ir` requires), keep those whose layer
cycles ``max(NF·SF·vectors, H·W·C/SIMD)`` are at most the target cycles per frame, and whose
output rate does not make a following max-pool (which inherits the PE) exceed the target;
take the one with the smallest estimated resources (LUTs and BRAM as fractions of the
xc7z020, see :mod:`lowbit_hdl.flow.resources`), ties broken by fewer PE·SIMD lanes and then
by fewer cycles. Every layer therefore meets the target with the least hardware, and no layer
is given more parallelism than the target needs (a balanced pipeline). When a layer cannot
reach the target even fully parallel, it gets its fastest folding and the result says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..ir import FC, Conv, LayerInfo, MaxPool, Network, NetworkError

__all__ = [
    "Folding",
    "FoldingResult",
    "divisors",
    "get_folding",
    "apply_folding",
    "load_folding",
    "save_folding",
    "mvtu_cycles",
    "auto_fold",
    "fold_for_budget",
    "target_cycles",
]

Folding = dict[str, dict[str, int]]


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n``, ascending."""
    if n < 1:
        raise ValueError(f"divisors: {n} must be ≥ 1")
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def get_folding(net: Network) -> Folding:
    """The folding currently set on ``net`` (MVTU layers, and max-pools with an explicit PE)."""
    out: Folding = {}
    for lay in net.layers:
        if isinstance(lay, (Conv, FC)):
            out[lay.name] = {"pe": int(lay.pe), "simd": int(lay.simd)}
        elif isinstance(lay, MaxPool) and lay.pe is not None:
            out[lay.name] = {"pe": int(lay.pe)}
    return out


def apply_folding(net: Network, folding: Folding) -> Network:
    """A copy of ``net`` with ``folding`` applied, validated with :meth:`Network.infer`.

    Raises :class:`NetworkError` for unknown layers, keys that the layer does not have, or a
    folding that breaks a divisibility rule (the message names the layer and the rule).
    """
    out = net.copy()
    for name, entry in folding.items():
        try:
            lay = out[name]
        except KeyError:
            raise NetworkError(f"folding: network {net.name} has no layer {name!r}") from None
        allowed = ("pe", "simd") if isinstance(lay, (Conv, FC)) else \
            ("pe",) if isinstance(lay, MaxPool) else ()
        for key, value in entry.items():
            if key not in allowed:
                raise NetworkError(f"folding: layer {name} ({lay.kind}) has no {key!r} "
                                   f"(allowed: {', '.join(allowed) or 'none'})")
            if not isinstance(value, int) or isinstance(value, bool):
                raise NetworkError(f"folding: layer {name}: {key} must be an integer, "
                                   f"got {value!r}")
            setattr(lay, key, value)
    out.infer()
    return out


def save_folding(folding: Folding, path: str | Path) -> Path:
    """Write a folding as JSON (sorted keys, stable across runs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(folding, indent=2, sort_keys=True) + "\n")
    return path


def load_folding(path: str | Path) -> Folding:
    """Read a folding JSON file: ``{layer: {"pe": P, "simd": S}}``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"folding file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise NetworkError(f"folding file {path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise NetworkError(f"folding file {path}: expected {{layer: {{\"pe\": P, "
                           "\"simd\": S}}}")
    return {str(k): dict(v) for k, v in data.items()}


def mvtu_cycles(info: LayerInfo, pe: int, simd: int) -> int:
    """Cycles per frame of an MVTU layer (with its sliding window) at a given folding."""
    c, h, w = info.in_shape
    cycles = (info.mh // pe) * (info.mw // simd) * info.vectors
    if isinstance(info.layer, Conv):
        cycles = max(cycles, h * w * c // simd)
    return cycles


def target_cycles(clock_mhz: float, fps: float) -> int:
    """Largest whole number of cycles per frame that still reaches ``fps`` at the clock."""
    if fps <= 0 or clock_mhz <= 0:
        raise ValueError("target frames/s and clock must be positive")
    return max(1, math.floor(clock_mhz * 1e6 / fps * (1 + 1e-12)))


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
        return {"folding": self.folding, "target_cycles": self.target_cycles,
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


def auto_fold(net: Network, target: int, *, lut_weight: float = 1.0,
              bram_weight: float = 1.0) -> FoldingResult:
    """Choose PE/SIMD for every MVTU layer so that each needs at most ``target`` cycles/frame.

    See the module docstring for the rule. ``lut_weight``/``bram_weight`` weigh the two
    resource fractions in the cost being minimised. Max-pool layers without an explicit PE
    follow their producer's PE and are counted as constraints on it.
    """
    from .resources import mvtu_resources

    if target < 1:
        raise ValueError(f"target cycles per frame must be ≥ 1, got {target}")
    work = net.copy()
    for lay in work.layers:  # a valid starting point: every layer fully folded
        if isinstance(lay, (Conv, FC)):
            lay.pe, lay.simd = 1, 1
    infos = work.infer()
    folding: Folding = {}
    unmet: list[str] = []
    for i, info in enumerate(infos):
        if not info.is_mvtu:
            continue
        pool = _next_pool(infos, i)

        def layer_cycles(pe: int, simd: int, info=info, pool=pool) -> int:
            cyc = mvtu_cycles(info, pe, simd)
            if pool is not None:
                c, h, w = pool.in_shape
                cyc = max(cyc, c * h * w // pe)
            return cyc

        def cost(ps: tuple[int, int], info=info) -> tuple[float, int, int]:
            r = mvtu_resources(info, ps[0], ps[1])
            frac = lut_weight * r.lut / 53_200 + bram_weight * r.bram36 / 140
            return (round(frac, 9), ps[0] * ps[1], layer_cycles(*ps))

        cands = _candidates(info)
        ok = [ps for ps in cands if layer_cycles(*ps) <= target]
        if ok:
            pe, simd = min(ok, key=cost)
        else:
            unmet.append(info.name)
            pe, simd = min(cands, key=lambda ps: (layer_cycles(*ps), cost(ps)))
        folding[info.name] = {"pe": pe, "simd": simd}
    folded = apply_folding(net, folding)
    from ..cost import network_cost

    cpf = network_cost(folded).cycles_per_frame
    return FoldingResult(folding, folded, target, cpf, not unmet and cpf <= target, unmet)


def fold_for_budget(net: Network, lut_budget: int | None = None,
                    bram36_budget: float | None = None) -> FoldingResult:
    """The fastest auto-folding whose analytic estimate fits the given LUT/BRAM36 budget.

    Binary search over the per-layer reachable cycle counts (resources fall as the target
    rises). Raises :class:`NetworkError` if even the slowest folding does not fit.
    """
    from .resources import estimate_network

    if lut_budget is None and bram36_budget is None:
        raise ValueError("fold_for_budget: give a LUT and/or a BRAM36 budget")
    infos = net.infer()
    values: set[int] = set()
    for info in infos:
        if info.is_mvtu:
            values.update(mvtu_cycles(info, pe, s) for pe, s in _candidates(info))
    targets = sorted(values)

    def fits(res: FoldingResult) -> bool:
        est = estimate_network(res.network).total
        return ((lut_budget is None or est.lut <= lut_budget)
                and (bram36_budget is None or est.bram36 <= bram36_budget))

    lo, hi = 0, len(targets) - 1
    best = auto_fold(net, targets[hi])
    if not fits(best):
        est = estimate_network(best.network).total
        raise NetworkError(f"network {net.name}: even the slowest folding needs "
                           f"{est.lut:,} LUT / {est.bram36:g} BRAM36, over the budget")
    while lo < hi:
        mid = (lo + hi) // 2
        res = auto_fold(net, targets[mid])
        if fits(res):
            best, hi = res, mid
        else:
            lo = mid + 1
    return best
