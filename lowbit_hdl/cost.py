"""Analytic cost model: cycles per frame, memory and operations per layer and network.

Cycle formulas (steady state, one frame after another, no stalls):

* MVTU (conv/fc): ``NF · SF · vectors`` with ``NF = MH/PE``, ``SF = MW/SIMD``; a conv layer
  is also bounded by its sliding window reading ``H · W · C / SIMD`` input beats, so
  ``cycles = max(NF · SF · OH · OW, H · W · C / SIMD)``.
* Max-pool: one input beat of PE channels per cycle, ``H · W · C / PE``.
* Top-k: one input beat per cycle, ``N / fold``.

The bottleneck layer sets the frame rate: ``fps = f_clk / max(cycles)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .ir import FC, Conv, LayerInfo, MaxPool, Network, TopK

__all__ = ["LayerCost", "NetworkCost", "layer_cost", "network_cost"]


@dataclass
class LayerCost:
    """Per-layer analytic figures."""

    name: str
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    in_dtype: str
    out_dtype: str
    weight_dtype: str
    pe: int
    simd: int
    mw: int
    mh: int
    nf: int
    sf: int
    cycles: int
    macs: int
    weight_bits: int
    threshold_bits: int
    acc_bits: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NetworkCost:
    """Whole-network figures at a clock frequency."""

    layers: list[LayerCost]
    clock_mhz: float

    @property
    def bottleneck(self) -> LayerCost:
        return max(self.layers, key=lambda c: c.cycles)

    @property
    def cycles_per_frame(self) -> int:
        return self.bottleneck.cycles

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_frame

    @property
    def latency_cycles(self) -> int:
        """Upper bound on one frame's latency: layers run one after another."""
        return sum(c.cycles for c in self.layers)

    @property
    def ops_per_frame(self) -> int:
        return 2 * sum(c.macs for c in self.layers)

    @property
    def gops(self) -> float:
        return self.ops_per_frame * self.fps / 1e9

    @property
    def weight_bits(self) -> int:
        return sum(c.weight_bits for c in self.layers)

    @property
    def threshold_bits(self) -> int:
        return sum(c.threshold_bits for c in self.layers)

    def to_dict(self) -> dict:
        return {
            "clock_mhz": self.clock_mhz,
            "cycles_per_frame": self.cycles_per_frame,
            "bottleneck": self.bottleneck.name,
            "fps": self.fps,
            "latency_cycles": self.latency_cycles,
            "ops_per_frame": self.ops_per_frame,
            "gops": self.gops,
            "weight_bits": self.weight_bits,
            "threshold_bits": self.threshold_bits,
            "layers": [c.to_dict() for c in self.layers],
        }


def layer_cost(info: LayerInfo) -> LayerCost:
    """Analytic figures of one layer (see the module docstring for the formulas)."""
    lay = info.layer
    c, h, w = info.in_shape
    pe = simd = mw = mh = nf = sf = macs = wbits = tbits = 0
    wdt = "-"
    if isinstance(lay, (Conv, FC)):
        pe, simd, mw, mh = lay.pe, lay.simd, info.mw, info.mh
        nf, sf = mh // pe, mw // simd
        cycles = nf * sf * info.vectors
        if isinstance(lay, Conv):
            cycles = max(cycles, h * w * c // simd)
        macs = mw * mh * info.vectors
        wbits = mw * mh * lay.weight_dtype.bits
        tbits = mh * info.n_thresholds * info.acc_bits
        wdt = lay.weight_dtype.name
    elif isinstance(lay, MaxPool):
        pe = info.in_fold
        cycles = h * w * c // pe
    elif isinstance(lay, TopK):
        pe = info.in_fold
        cycles = c * h * w // pe
    else:  # pragma: no cover
        raise TypeError(type(lay))
    return LayerCost(lay.name, lay.kind, info.in_shape, info.out_shape, info.in_dtype.name,
                     info.out_dtype.name, wdt, pe, simd, mw, mh, nf, sf, cycles, macs, wbits,
                     tbits, info.acc_bits)


def network_cost(net: Network, clock_mhz: float = 100.0) -> NetworkCost:
    """Analytic figures of every layer of ``net`` and of the whole pipeline."""
    return NetworkCost([layer_cost(i) for i in net.infer()], clock_mhz)
