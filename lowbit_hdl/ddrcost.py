"""Analytic cost of the two architectures for networks larger than the chip: cycles, DDR
bytes and the bound (compute or DDR) per layer, and a frame's latency and throughput.

:mod:`lowbit_hdl.cost` re-exports everything here and stays the entry point; the formulas of
the dataflow layers (:func:`lowbit_hdl.cost.layer_cycles`) are reused, never restated.

DDR model (both architectures): an AXI4 HP port moves one 64-bit word per cycle at the fabric
clock (:data:`PORT_BYTES`), so ``n`` bytes over ``ports`` ports take
``ceil(n / (8 · ports))`` cycles (:func:`ddr_cycles`). Reads are assumed to be prefetched ahead
of use (bursts, several outstanding reads), so a layer takes the longer of its compute and its
DDR time, never their sum. Latencies of the DDR itself (a few hundred ns per burst) and of
refresh are not modelled.

**Hybrid dataflow** (:func:`hybrid_cost`): today's pipeline, each Conv/FC layer with a
*placement* (:data:`PLACEMENTS`):

* ``onchip``: today's MVTU, weights on chip: :func:`lowbit_hdl.cost.layer_cycles`.
* ``stream`` (FC only): weights read from DDR once per frame, in MVTU order:
  ``max(NF·SF, ddr)`` with ``ddr = ddr_cycles(weight bytes, 1)``: each DDR layer has its own
  64-bit read master (:mod:`lowbit_hdl.hw.ddrfetch`), on one HP port.
* ``tiled`` (Conv only, :func:`tiled_phases`): the whole input map is written into a replay
  buffer (``fill = H·W·C/SIMD`` beats), replayed ``NF`` times through the sliding window
  while one weight tile (``PE`` rows) at a time is used (``compute = NF·SF·P``, the next tile
  loading from DDR meanwhile), then the transpose buffer emits the outputs pixel-major
  (``drain = P·NF`` beats). The replay and transpose buffers are single: the next frame's
  fill overlaps this frame's drain, so a frame every ``max(fill, drain) + max(compute, ddr)``
  cycles; one frame passes in ``fill + max(compute, ddr) + drain``.

The placement rule (:func:`choose_placements`): every layer starts ``onchip``; while the
design's block RAM exceeds the budget, the ``onchip`` layer whose move saves the most block
RAM goes to DDR (``stream`` for FC, ``tiled`` for Conv). Block RAM counts come from the
caller (the resource estimate lives in :mod:`lowbit_hdl.flow.resources`).

Throughput: frames overlap, every DDR layer works on a different frame at the same time and
the ports are shared, so a frame every ``max(max_l cycles_l, ddr_cycles(Σ bytes))`` cycles.

Latency of ONE frame through an empty pipeline (:func:`_timeline`): each layer has a first
and a last output cycle ``[s, e]``, computed from its input's ``[s_in, e_in]`` and its own
steady-state time ``T`` (the DDR layers of one frame run one after another, see below, so
each has its HP port to itself; its read master moves one 64-bit word per cycle):

* sliding-window conv (``onchip``) and max-pool: the first output row needs the first
  ``K − pad`` input rows, so ``s = s_in + (K − pad)/H · (e_in − s_in)``; the last output row
  follows the last input row, ``e = max(e_in + T/OH, s + T)``;
* FC (``onchip``/``stream``): neuron fold 1 onwards needs the whole input vector, fold 0
  runs as the input arrives: ``s = max(e_in, s_in + T/NF)``, ``e = s + T·(NF − 1)/NF``;
* ``tiled`` conv: the fill runs with the input, the computation needs all of it, the outputs
  leave after the last tile: ``s = max(e_in, s_in + fill) + max(compute, ddr)``,
  ``e = s + drain``;
* top-k: ``s = e = max(e_in, s_in + T)``.

The frame's input arrives over ``C·H·W / input_fold`` cycles (one stream beat per cycle).
This is a model, not a simulation: it ignores FIFO depths (a producer may stall when its
consumer lags) and the sliding window's exact row schedule.

**Engine** (:func:`engine_cost`): one runtime-configured sliding window + MVTU + thresholds +
max-pool with ``PE × SIMD`` low-bit lanes (BIPOLAR weights, inputs of at most
:data:`ENGINE_LOWBIT_ABITS` bits) and ``DSP_PE × DSP_SIMD`` DSP lanes (the others: multi-bit
weights or 8-bit pixels, i.e. the first and last layers), running the layers
one after another. The low-bit lanes run the v1 loop of ``lowbit_hdl.runtime.engine``: for
each neuron fold, output pixel and kernel position one beat per ``SIMD`` channels, so a conv
takes ``ceil(MH/PE) · OH·OW · K·K·ceil(C/SIMD)`` cycles and an FC (a conv whose kernel covers
its ``H × W`` input map) ``ceil(MH/PE) · H·W·ceil(C/SIMD)``; the DSP lanes' window emits a
kernel row (``K·C`` values) per group of beats, ``ceil(MH/PE) · K·ceil(K·C/SIMD) · OH·OW``
for a conv and ``ceil(MH/PE) · ceil(MW/SIMD)`` for an FC (unused lanes are lost when a
dimension is not a multiple);
max-pools and top-k run on the output stream of the layer before them (no cycles of their
own). Weights and thresholds always come from DDR (once per frame; a layer whose weights
exceed the weight buffer is split into output-channel tiles). Activations stay in an on-chip
ping-pong buffer when the (pooled) map fits it, else they are written to DDR and read back,
once per weight tile. Each layer adds ``overhead`` cycles (descriptor fetch, pipeline fill
and drain). A layer takes ``max(compute, ddr) + overhead``; the frame is the sum.

Neither architecture counts the image's input DMA or the result's output DMA as DDR traffic
(150 KB for a 224×224×3 image, against megabytes of weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from .cost import layer_cycles
from .ir import FC, Conv, LayerInfo, MaxPool, Network, TopK

__all__ = [
    "PORT_BYTES",
    "PLACEMENTS",
    "ENGINE_LOWBIT_ABITS",
    "EngineConfig",
    "EngineLayer",
    "EngineSplit",
    "EngineCost",
    "HybridLayer",
    "HybridCost",
    "TiledPhases",
    "choose_placements",
    "ddr_cycles",
    "ddr_placement",
    "engine_array",
    "engine_cost",
    "engine_lanes",
    "engine_figures",
    "engine_format",
    "engine_infos",
    "engine_map_bits",
    "engine_split",
    "engine_stage_cycles",
    "engine_map_load_cycles",
    "engine_fifo_words",
    "hybrid_cost",
    "tiled_phases",
    "weight_bytes",
]

#: bytes one HP port moves per fabric clock cycle (a 64-bit AXI word)
PORT_BYTES = 8
#: widest input (bits) the engine's low-bit lanes take; wider inputs use the DSP lanes
ENGINE_LOWBIT_ABITS = 4
#: where a Conv/FC layer's weights live in the hybrid architecture
PLACEMENTS = ("onchip", "stream", "tiled")


def ddr_cycles(nbytes: int, ports: int) -> int:
    """Cycles to move ``nbytes`` over ``ports`` HP ports: ``ceil(nbytes / (8 · ports))``."""
    if not isinstance(nbytes, int) or not isinstance(ports, int):
        raise TypeError("ddr_cycles: nbytes and ports must be int")
    if nbytes < 0 or ports < 1:
        raise ValueError(f"ddr_cycles: nbytes={nbytes} must be ≥ 0 and ports={ports} ≥ 1")
    return -(-nbytes // (PORT_BYTES * ports))


def weight_bytes(info: LayerInfo) -> int:
    """Bytes of a Conv/FC layer's weights in DDR: ``ceil(MH·MW·wbits / 8)``, i.e. packed
    densely (a layout that pads each ``PE·SIMD`` beat to whole 64-bit words reads more)."""
    if not info.is_mvtu:
        return 0
    return -(-info.mh * info.mw * info.layer.weight_dtype.bits // 8)


def ddr_placement(info: LayerInfo) -> str:
    """The placement a Conv/FC layer gets when its weights leave the chip."""
    if isinstance(info.layer, FC):
        return "stream"
    if isinstance(info.layer, Conv):
        return "tiled"
    raise ValueError(f"layer {info.name}: only conv and fc layers have a placement")


@dataclass(frozen=True)
class TiledPhases:
    """The three phases of a ``tiled`` conv, in cycles (see the module docstring)."""

    fill: int  # input map into the replay buffer: H·W·C/SIMD
    compute: int  # NF·SF·P: NF replays of the window, one weight tile each
    drain: int  # transpose buffer out, pixel-major: P·NF


def tiled_phases(info: LayerInfo, pe: int | None = None, simd: int | None = None
                 ) -> TiledPhases:
    """Fill, compute and drain cycles of a conv layer placed ``tiled``."""
    lay = info.layer
    if not isinstance(lay, Conv):
        raise ValueError(f"layer {info.name}: a tiled placement needs a Conv layer")
    pe = lay.pe if pe is None else pe
    simd = lay.simd if simd is None else simd
    c, h, w = info.in_shape
    nf, sf = info.mh // pe, info.mw // simd
    return TiledPhases(h * w * c // simd, nf * sf * info.vectors, info.vectors * nf)


# -- hybrid dataflow ------------------------------------------------------------------------

@dataclass
class HybridLayer:
    """One layer of the hybrid pipeline.

    ``compute``: cycles per frame without DDR limits (tiled: ``max(fill, drain) + NF·SF·P``);
    ``ddr_cycles``: the layer's weight bytes over all ports; ``cycles``: steady state per
    frame; ``bound``: ``ddr`` when the DDR time exceeds the MVTU's, else ``compute``;
    ``start``/``end``: first and last output cycle of one frame through an empty pipeline.
    """

    name: str
    kind: str
    placement: str  # onchip, stream, tiled; "-" for max-pool / top-k
    pe: int
    simd: int
    compute: int
    ddr_bytes: int
    ddr_cycles: int
    cycles: int
    bound: str
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class HybridCost:
    """Figures of the hybrid pipeline at a port count and clock."""

    layers: list[HybridLayer]
    ports: int
    clock_mhz: float

    @property
    def ddr_bytes(self) -> int:
        """DDR bytes read per frame (weights of the stream and tiled layers)."""
        return sum(c.ddr_bytes for c in self.layers)

    @property
    def ddr_cycles(self) -> int:
        """Cycles the ports need for one frame's bytes, all DDR layers sharing them."""
        return ddr_cycles(self.ddr_bytes, self.ports)

    @property
    def bottleneck(self) -> HybridLayer:
        return max(self.layers, key=lambda c: c.cycles)

    @property
    def interval(self) -> int:
        """Cycles between frames, back to back: the slowest layer or the shared ports."""
        return max(self.bottleneck.cycles, self.ddr_cycles)

    @property
    def bound(self) -> str:
        """What limits the throughput: ``compute (layer)``, ``ddr (layer)`` (a layer's own
        read master) or ``ddr (shared ports)``."""
        if self.ddr_cycles > self.bottleneck.cycles:
            return "ddr (shared ports)"
        return f"{self.bottleneck.bound} ({self.bottleneck.name})"

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.interval

    @property
    def latency_cycles(self) -> int:
        """One frame through an empty pipeline: the last layer's last output."""
        return self.layers[-1].end

    @property
    def latency_ms(self) -> float:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    @property
    def bandwidth_mb_s(self) -> float:
        """DDR bandwidth (MB/s) the weights need at the throughput of :attr:`fps`."""
        return self.ddr_bytes * self.fps / 1e6

    @property
    def placements(self) -> dict[str, str]:
        return {c.name: c.placement for c in self.layers if c.placement != "-"}

    def to_dict(self) -> dict:
        return {"arch": "hybrid", "ports": self.ports, "clock_mhz": self.clock_mhz,
                "latency_cycles": self.latency_cycles, "interval": self.interval,
                "fps": self.fps, "bound": self.bound, "ddr_bytes": self.ddr_bytes,
                "ddr_cycles": self.ddr_cycles, "bandwidth_mb_s": self.bandwidth_mb_s,
                "layers": [c.to_dict() for c in self.layers]}


def choose_placements(infos: list[LayerInfo], budget_bram36: float,
                      bram_of: Callable[[LayerInfo, str], float], fixed_bram36: float = 0.0,
                      given: Mapping[str, str] | None = None) -> dict[str, str]:
    """The placement of every Conv/FC layer by the rule of the module docstring.

    Parameters
    ----------
    infos : list of LayerInfo
        The network's layers (:meth:`Network.infer`).
    budget_bram36 : float
        Block RAM (BRAM36) the design may use.
    bram_of : callable
        ``bram_of(info, placement)``: the BRAM36 a layer needs at a placement.
    fixed_bram36 : float
        BRAM36 of everything else (pools, FIFOs, converters).
    given : mapping, optional
        Placements fixed by the caller; the rule moves only the other layers.
    """
    given = dict(given or {})
    mvtu = [i for i in infos if i.is_mvtu]
    for name, pl in given.items():
        info = next((i for i in mvtu if i.name == name), None)
        if info is None:
            raise ValueError(f"placement for {name!r}: no such conv or fc layer")
        if pl not in ("onchip", ddr_placement(info)):
            raise ValueError(f"layer {name}: placement {pl!r} must be 'onchip' or "
                             f"{ddr_placement(info)!r}")
    out = {i.name: given.get(i.name, "onchip") for i in mvtu}
    need = {(i.name, pl): bram_of(i, pl) for i in mvtu for pl in ("onchip", ddr_placement(i))}

    def total() -> float:
        return fixed_bram36 + sum(need[n, pl] for n, pl in out.items())

    while total() > budget_bram36:
        movable = [i for i in mvtu if out[i.name] == "onchip" and i.name not in given]
        saves = {i.name: need[i.name, "onchip"] - need[i.name, ddr_placement(i)]
                 for i in movable}
        best = max(movable, key=lambda i: saves[i.name], default=None)
        if best is None or saves[best.name] <= 0:
            break  # nothing left to move: the caller's fit check says it does not fit
        out[best.name] = ddr_placement(best)
    return out


def _hybrid_layer(info: LayerInfo, placement: str, ports: int) -> HybridLayer:
    lay = info.layer
    if not info.is_mvtu:
        cyc = layer_cycles(info)
        return HybridLayer(lay.name, lay.kind, "-", info.in_fold, 0, cyc, 0, 0, cyc, "compute")
    if placement not in ("onchip", ddr_placement(info)):
        raise ValueError(f"layer {info.name}: placement {placement!r} must be 'onchip' or "
                         f"{ddr_placement(info)!r}")
    mv = info.mh // lay.pe * (info.mw // lay.simd) * info.vectors
    if placement == "onchip":
        cyc = layer_cycles(info)
        return HybridLayer(lay.name, lay.kind, placement, lay.pe, lay.simd, cyc, 0, 0, cyc,
                           "compute")
    nbytes = weight_bytes(info)
    # one 64-bit AXI4 read master per DDR layer (lowbit_hdl.hw.ddrfetch): one port's rate
    d = ddr_cycles(nbytes, 1)
    bound = "ddr" if d > mv else "compute"
    if placement == "stream":
        return HybridLayer(lay.name, lay.kind, placement, lay.pe, lay.simd, mv, nbytes, d,
                           max(mv, d), bound)
    ph = tiled_phases(info)
    over = max(ph.fill, ph.drain)
    return HybridLayer(lay.name, lay.kind, placement, lay.pe, lay.simd, over + ph.compute,
                       nbytes, d, over + max(ph.compute, d), bound)


def _timeline(infos: list[LayerInfo], layers: list[HybridLayer], input_beats: int) -> None:
    """Fill in ``start``/``end`` of every layer (module docstring: latency of one frame)."""
    s_in, e_in = 0, input_beats
    for info, c in zip(infos, layers, strict=True):
        lay = info.layer
        t = c.cycles
        if c.placement == "tiled":
            ph = tiled_phases(info)
            s = max(e_in, s_in + ph.fill) + max(ph.compute, c.ddr_cycles)
            e = s + ph.drain
        elif isinstance(lay, FC):
            nf = info.mh // lay.pe
            s = max(e_in, s_in + t // nf)
            e = s + t - t // nf
        elif isinstance(lay, (Conv, MaxPool)):
            h = info.in_shape[1]
            k = lay.kernel
            pad = lay.padding if isinstance(lay, Conv) else 0
            frac = min(max(k - pad, 1), h) / h
            s = s_in + math.ceil(frac * (e_in - s_in))
            e = max(e_in + -(-t // info.out_shape[1]), s + t)
        elif isinstance(lay, TopK):
            s = e = max(e_in, s_in + t)
        else:  # pragma: no cover - Network.infer admits no other layer
            raise TypeError(f"unknown layer type {type(lay).__name__}")
        c.start, c.end = s, e
        s_in, e_in = s, e


def _input_beats(infos: list[LayerInfo]) -> int:
    c, h, w = infos[0].in_shape
    return c * h * w // infos[0].in_fold


def hybrid_cost(net: Network, ports: int = 1, placements: Mapping[str, str] | None = None,
                clock_mhz: float = 100.0) -> HybridCost:
    """Figures of ``net`` as a hybrid pipeline (module docstring).

    ``placements`` maps Conv/FC layer names to a placement; layers not named stay
    ``onchip`` (:func:`choose_placements` applies the rule). Raises ``ValueError`` for an
    unknown layer or a placement the layer cannot have, ``TypeError`` for a non-int port
    count.
    """
    if not isinstance(ports, int) or isinstance(ports, bool):
        raise TypeError(f"hybrid_cost: ports must be an int, got {ports!r}")
    if ports < 1:
        raise ValueError(f"hybrid_cost: ports={ports} must be ≥ 1")
    infos = net.infer()
    placements = dict(placements or {})
    names = {i.name for i in infos if i.is_mvtu}
    for name in placements:
        if name not in names:
            raise ValueError(f"placement for {name!r}: network {net.name} has no such conv "
                             "or fc layer")
    layers = [_hybrid_layer(i, placements.get(i.name, "onchip"), ports) for i in infos]
    _timeline(infos, layers, _input_beats(infos))
    return HybridCost(layers, ports, clock_mhz)


# -- the engine -------------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineConfig:
    """One runtime-configured engine: lanes, on-chip buffers, per-layer overhead.

    ``act_buffer_bits``: capacity of each of the two activation (ping-pong) buffers;
    ``weight_buffer_bits``: capacity of the on-chip weight tile (double-buffered);
    ``overhead``: cycles each layer adds (descriptor, pipeline fill and drain);
    ``ports``: 64-bit words per beat of the built engine's tile stream, one AXI4 read master
    (HP port) each (1, 2 or 4, dividing ``pe·simd/64``; :func:`engine_format`).
    """

    pe: int = 32
    simd: int = 64
    dsp_pe: int = 16
    dsp_simd: int = 12
    act_buffer_bits: int = 36 * 36864  # 36 BRAM36 each
    weight_buffer_bits: int = 8 * 36864
    overhead: int = 500
    ports: int = 1

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"EngineConfig.{k} must be an int, got {v!r}")
            if v < (0 if k == "overhead" else 1):
                raise ValueError(f"EngineConfig.{k}={v} out of range")
        if self.ports not in (1, 2, 4):
            raise ValueError(f"EngineConfig.ports={self.ports} must be 1, 2 or 4")


def engine_array(info: LayerInfo) -> str:
    """The engine's lane array a Conv/FC layer runs on: ``dsp`` for multi-bit weights or
    inputs wider than :data:`ENGINE_LOWBIT_ABITS` bits, else ``lowbit``."""
    lay = info.layer
    if lay.weight_dtype.is_bipolar and info.in_dtype.bits <= ENGINE_LOWBIT_ABITS:
        return "lowbit"
    return "dsp"


def engine_lanes(info: LayerInfo, cfg: EngineConfig) -> tuple[int, int]:
    """(PE, SIMD) of the array a layer runs on (:func:`engine_array`)."""
    if engine_array(info) == "lowbit":
        return cfg.pe, cfg.simd
    return cfg.dsp_pe, cfg.dsp_simd


@dataclass
class EngineLayer:
    """One layer's pass through the engine (max-pools and top-k fused into the layer
    before them). ``act_in``/``act_out``: ``chip`` or ``ddr``; ``tiles``: weight tiles
    (input replays)."""

    name: str
    kind: str
    fused: str  # fused following layers (pool, top-k), "" when none
    pe: int
    simd: int
    compute: int
    tiles: int
    act_in: str
    act_out: str
    weight_bytes: int  # weights and thresholds
    act_bytes: int
    ddr_bytes: int
    ddr_cycles: int
    cycles: int
    bound: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EngineCost:
    """Figures of the engine: layers in sequence, one frame at a time."""

    layers: list[EngineLayer]
    config: EngineConfig
    ports: int
    clock_mhz: float
    notes: list[str] = field(default_factory=list)

    @property
    def latency_cycles(self) -> int:
        return sum(c.cycles for c in self.layers)

    @property
    def latency_ms(self) -> float:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    @property
    def interval(self) -> int:
        return self.latency_cycles

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.interval

    @property
    def ddr_bytes(self) -> int:
        return sum(c.ddr_bytes for c in self.layers)

    @property
    def bandwidth_mb_s(self) -> float:
        return self.ddr_bytes * self.fps / 1e6

    @property
    def bound(self) -> str:
        d = sum(c.cycles for c in self.layers if c.bound == "ddr")
        return f"ddr in {d / max(1, self.latency_cycles):.0%} of the cycles"

    def to_dict(self) -> dict:
        return {"arch": "engine", "ports": self.ports, "clock_mhz": self.clock_mhz,
                "config": asdict(self.config), "latency_cycles": self.latency_cycles,
                "fps": self.fps, "ddr_bytes": self.ddr_bytes,
                "bandwidth_mb_s": self.bandwidth_mb_s,
                "layers": [c.to_dict() for c in self.layers]}


def _engine_sf(info: LayerInfo, simd: int) -> int:
    """Weight beats per output pixel and neuron fold. Low-bit lanes (the v1 engine loop,
    ``lowbit_hdl.runtime.engine``): ``K·K·ceil(C/simd)``, an FC being a conv whose kernel
    covers its ``H × W`` input map; DSP lanes: one kernel row (``K·C`` values) per group of
    beats for a conv, ``ceil(MW/simd)`` for an FC."""
    c, h, w = info.in_shape
    lay = info.layer
    if engine_array(info) == "lowbit":
        k2 = lay.kernel * lay.kernel if isinstance(lay, Conv) else h * w
        return k2 * -(-c // simd)
    if isinstance(lay, Conv):
        return lay.kernel * -(-lay.kernel * c // simd)
    return -(-info.mw // simd)


def _map_bits(shape: tuple[int, int, int], bits: int) -> int:
    return shape[0] * shape[1] * shape[2] * bits


def engine_cost(net: Network, cfg: EngineConfig | None = None, ports: int = 1,
                clock_mhz: float = 100.0) -> EngineCost:
    """Figures of ``net`` on one runtime-configured engine (module docstring)."""
    cfg = cfg or EngineConfig()
    if not isinstance(cfg, EngineConfig):
        raise TypeError(f"engine_cost: cfg must be an EngineConfig, got {type(cfg).__name__}")
    if not isinstance(ports, int) or isinstance(ports, bool):
        raise TypeError(f"engine_cost: ports must be an int, got {ports!r}")
    if ports < 1:
        raise ValueError(f"engine_cost: ports={ports} must be ≥ 1")
    infos = net.infer()
    groups: list[tuple[LayerInfo, list[LayerInfo]]] = []
    for info in infos:
        if info.is_mvtu or not groups:
            groups.append((info, []))
        else:
            groups[-1][1].append(info)
    layers: list[EngineLayer] = []
    act_in = "ddr"  # the image: streamed in once by the input DMA (not counted)
    for n, (info, fused) in enumerate(groups):
        lay = info.layer
        if not info.is_mvtu:
            raise ValueError(f"engine: layer {info.name} must follow a conv or fc layer")
        pe, simd = engine_lanes(info, cfg)
        nf = -(-info.mh // pe)
        sf = _engine_sf(info, simd)
        # the v1 loop NF·P·SF. CALL SITE: the datapath's exact cycles (tile loads, fill,
        # writer) are lowbit_hdl.cost.engine_layer_cycles(desc, pe, simd), desc from
        # lowbit_hdl.runtime.engine.engine_descriptors; they replace this once the engine
        # model here is the v1 engine (activations on chip, weight tiles of PE channels)
        compute = nf * sf * info.vectors
        wb = weight_bytes(info)
        tiles = max(1, -(-wb * 8 // cfg.weight_buffer_bits))
        wb += -(-info.mh * info.n_thresholds * info.acc_bits // 8)  # thresholds, per layer
        out_info = fused[-1] if fused else info
        last = n == len(groups) - 1
        out_bits = _map_bits(out_info.out_shape, out_info.out_dtype.bits)
        act_out = "out" if last else ("chip" if out_bits <= cfg.act_buffer_bits else "ddr")
        act_bytes = 0
        if act_in == "ddr" and n > 0:
            act_bytes += tiles * _map_bits(info.in_shape, info.in_dtype.bits) // 8
        if act_out == "ddr":
            act_bytes += out_bits // 8
        nbytes = wb + act_bytes
        d = ddr_cycles(nbytes, ports)
        layers.append(EngineLayer(
            lay.name, lay.kind, "+".join(f.name for f in fused), pe, simd, compute, tiles,
            "image" if n == 0 else act_in, act_out, wb, act_bytes, nbytes, d,
            max(compute, d) + cfg.overhead, "ddr" if d > compute else "compute"))
        act_in = act_out
    return EngineCost(layers, cfg, ports, clock_mhz)


# -- which layers the engine runs ----------------------------------------------------------

@dataclass(frozen=True)
class EngineSplit:
    """A network cut for the engine (v1): ``front`` (dataflow stages before the engine: the
    layers on 8-bit pixels and any whose input map does not fit an activation buffer),
    ``engine`` (``(conv/fc, fused max-pool or None)`` pairs run on the engine, layer after
    layer) and ``tail`` (dataflow stages after it: multi-bit-weight last layers, top-k).
    ``act`` is the data type of every map the engine reads."""

    front: tuple[LayerInfo, ...]
    engine: tuple[tuple[LayerInfo, LayerInfo | None], ...]
    tail: tuple[LayerInfo, ...]
    act: object  # DataType

    @property
    def raw(self) -> bool:
        """The last engine layer emits raw accumulators (no activation)."""
        return self.engine[-1][0].layer.act is None

    @property
    def names(self) -> list[str]:
        return [n for c, p in self.engine for n in ([c.name] + ([p.name] if p else []))]


def engine_map_bits(shape: tuple[int, int, int], bits: int, simd: int) -> int:
    """Bits a (C, H, W) map takes in an engine activation buffer: ``H·W`` pixels of
    ``ceil(C/simd)`` words of ``simd`` elements (the layout of
    :mod:`lowbit_hdl.runtime.engine`)."""
    c, h, w = shape
    return h * w * -(-c // simd) * simd * bits


def engine_split(infos: list[LayerInfo], simd: int, buffer_bits: int) -> EngineSplit:
    """Cut ``infos`` into front, engine and tail (:class:`EngineSplit`).

    A Conv/FC can run on the engine when its weights are BIPOLAR and its input has at most
    :data:`ENGINE_LOWBIT_ABITS` bits (:func:`engine_array` ``"lowbit"``); a max-pool right
    after it is fused. The engine runs the longest chain of such layers that starts at the
    first one whose input map fits an activation buffer (``buffer_bits``, layout of
    :func:`engine_map_bits`), all reading the same data type, every map written fitting a
    buffer; a last layer without activation must have one output pixel (its raw stream is
    the output). Raises ``ValueError`` (naming the layer) when no layer can run on it.
    """
    groups: list[list[LayerInfo]] = []
    for info in infos:
        if info.is_mvtu or not groups or isinstance(info.layer, TopK) \
                or not groups[-1][0].is_mvtu or len(groups[-1]) > 1:
            groups.append([info])
        else:
            groups[-1].append(info)

    def eligible(g: list[LayerInfo]) -> bool:
        return g[0].is_mvtu and engine_array(g[0]) == "lowbit"

    def fits(shape: tuple[int, int, int], bits: int) -> bool:
        return engine_map_bits(shape, bits, simd) <= buffer_bits

    start = next((k for k, g in enumerate(groups)
                  if eligible(g) and fits(g[0].in_shape, g[0].in_dtype.bits)), None)
    if start is None:
        raise ValueError("engine: no Conv/FC layer has BIPOLAR weights, an input of at most "
                         f"{ENGINE_LOWBIT_ABITS} bits and an input map that fits an "
                         f"activation buffer ({buffer_bits} bits)")
    act = groups[start][0].in_dtype
    end = start
    while end < len(groups) and eligible(groups[end]) and groups[end][0].in_dtype == act:
        g = groups[end]
        out = g[-1]
        if g[0].layer.act is None:  # raw: only as the last engine layer, one pixel
            if g[0].vectors == 1 and len(g) == 1:
                end += 1
            break
        if out.out_dtype != act or not fits(out.out_shape, out.out_dtype.bits):
            if out.out_dtype == act:  # does not fit: stop before it
                break
            end += 1  # its output type differs: it is the last engine layer (drained)
            break
        end += 1
    engine = tuple((g[0], g[1] if len(g) > 1 else None) for g in groups[start:end])
    if not engine:
        raise ValueError(f"engine: layer {groups[start][0].name} cannot run on the engine")
    flat = lambda gs: tuple(i for g in gs for i in g)  # noqa: E731
    return EngineSplit(flat(groups[:start]), engine, flat(groups[end:]), act)


def engine_infos(split: EngineSplit) -> list[LayerInfo]:
    """The engine's layers in order, each Conv/FC followed by its fused max-pool (the form
    :mod:`lowbit_hdl.runtime.engine`'s compiler takes)."""
    return [i for c, p in split.engine for i in ((c, p) if p else (c,))]


def engine_format(split: EngineSplit, cfg: EngineConfig):
    """The :class:`~lowbit_hdl.runtime.engine.EngineFormat` of an engine design: ``cfg``'s
    lanes, and the activation buffer depth, accumulator, tile depth and raw widths the
    split's layers need (:func:`~lowbit_hdl.runtime.engine.engine_requirements`; the buffer
    depth rounded up to a multiple of :data:`ENGINE_BUFFER_ROUND` words). Raises
    ``ValueError`` (naming the rule) when a map does not fit ``cfg.act_buffer_bits``."""
    from .runtime.engine import EngineFormat, engine_requirements

    req = engine_requirements(engine_infos(split), cfg.pe, cfg.simd, split.act)
    most = cfg.act_buffer_bits // (cfg.simd * split.act.bits)
    if req["buffer_words"] > most:
        raise ValueError(f"engine: a map of {req['buffer_words']} words does not fit the "
                         f"{most}-word activation buffers (rule: act_buffer_bits)")
    words = min(most, -(-req["buffer_words"] // ENGINE_BUFFER_ROUND) * ENGINE_BUFFER_ROUND)
    return EngineFormat(cfg.pe, cfg.simd, split.act, req["acc_bits"], words, req["max_sf"],
                        req["raw_bits"], cfg.ports)


#: activation buffer depths are rounded up to a multiple of this many words (a block RAM's
#: depth at its widest aspect ratio)
ENGINE_BUFFER_ROUND = 512


def engine_stage_cycles(split: EngineSplit, cfg: EngineConfig, load_elems: int,
                        spread: int, rows: list[dict] | None = None, head: int = 0,
                        descs: list[dict] | None = None) -> int:
    """Cycles of one frame on an engine stage: the frame's layer count
    (:func:`~lowbit_hdl.cost.engine_descriptor_cycles`), then per layer its descriptor read
    and the layer (:func:`~lowbit_hdl.cost.engine_layer_cycles`), as :func:`engine_figures`
    counts them, the first layer overlapping the loading of the front's map
    (:func:`engine_map_load_cycles`; ``head`` words of it waiting when the loader opens),
    then the drain of the last map (:func:`~lowbit_hdl.cost.engine_drain_cycles`). With
    ``head = 0`` this is the frame's latency through the engine; frames back to back, the
    period is this with ``head`` the words the FIFO before the loader holds
    (:func:`engine_fifo_words`; a front faster than the engine has filled it). ``rows``:
    the figures, ``descs`` the descriptors, when the caller has them."""
    from .cost import engine_descriptor_cycles, engine_drain_cycles

    if rows is None:
        rows = engine_figures(split, cfg, engine_map_load_cycles(split, cfg, load_elems, spread),
                              descs, head)
    total = engine_descriptor_cycles()  # the layer count
    total += sum(r["cycles"] for r in rows)
    if not split.raw:
        last, pool = split.engine[-1]
        c, h, w = (pool or last).out_shape
        total += engine_drain_cycles((h, w, c), cfg.simd)
    return total


def engine_fifo_words(split: EngineSplit, cfg: EngineConfig, load_elems: int,
                      depth: int) -> int:
    """Buffer words of the front's map that ``depth`` beats of ``load_elems`` elements
    hold (whole words: a pixel's ``C`` channels fill ``ceil(C/SIMD)`` words)."""
    c, h, w = split.engine[0][0].in_shape
    cf = -(-c // cfg.simd)
    return depth * load_elems * cf // c


def engine_map_load_cycles(split: EngineSplit, cfg: EngineConfig, load_elems: int,
                           spread: int) -> int:
    """Cycles to load the front's map into buffer 0: the loader's
    (:func:`lowbit_hdl.cost.engine_load_cycles`), or the pace of the front's slowest stage
    ``spread`` when that is slower."""
    from .cost import engine_load_cycles

    c, h, w = split.engine[0][0].in_shape
    return max(engine_load_cycles((h, w, c), load_elems, cfg.simd), spread)


def engine_figures(split: EngineSplit, cfg: EngineConfig, load_cycles: int | None = None,
                   descs: list[dict] | None = None, head: int = 0) -> list[dict]:
    """Per engine layer: its descriptor's geometry (``nf``, ``sf``, output pixels), its
    cycles on the engine (:func:`lowbit_hdl.cost.engine_layer_cycles` plus its descriptor
    read), its compute (``NF·P·SF``), its tile bytes read from DDR per frame, and its bound:
    ``ddr`` when loading a tile (``cfg.ports`` 64-bit words per cycle,
    :func:`~lowbit_hdl.cost.engine_tile_load_cycles`) takes longer than computing it, else
    ``compute``. With ``load_cycles`` (:func:`engine_map_load_cycles`) the first layer
    overlaps the loading of the front's map, which the loader starts when the frame's layer
    count is read (:func:`~lowbit_hdl.cost.engine_map_release`, ``head`` words waiting);
    its bound is ``front`` when that makes it longer. ``descs``: the layers' descriptors
    (:func:`lowbit_hdl.runtime.engine.engine_descriptors`), when the caller has them."""
    from .cost import (
        engine_descriptor_cycles,
        engine_layer_cycles,
        engine_map_release,
        engine_tile_load_cycles,
    )
    from .runtime.engine import engine_descriptors

    if descs is None:
        descs = engine_descriptors(engine_infos(split), engine_format(split, cfg))
    rows = []
    lead = 2 * engine_descriptor_cycles()  # the layer count and layer 0's descriptor
    for i, ((info, pool), d) in enumerate(zip(split.engine, descs, strict=True)):
        p = d["out_h"] * d["out_w"]
        own = engine_layer_cycles(d, cfg.pe, cfg.simd, cfg.ports)
        cycles = own
        if i == 0 and load_cycles is not None:
            cycles = engine_layer_cycles(d, cfg.pe, cfg.simd, cfg.ports,
                                         engine_map_release(d, load_cycles, lead, head))
        bound = "ddr" if engine_tile_load_cycles(d, cfg.ports) > p * d["sf"] else "compute"
        rows.append({
            "layer": info.name, "pool": pool.name if pool else "", "nf": d["nf"],
            "sf": d["sf"], "pixels": p, "compute": d["nf"] * p * d["sf"],
            "cycles": engine_descriptor_cycles() + cycles,
            "tile_bytes": d["nf"] * d["tile_words"] * 8,
            "bound": "front" if cycles > own else bound})
    return rows
