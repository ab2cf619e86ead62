"""The engine's formats, one owner: the layer descriptor (fields, widths, packing), the
tile stream (:func:`layer_tile_words`), the compiler of a network's engine layers into
descriptors and a DDR image (:func:`engine_descriptors`, :func:`engine_image`,
:func:`engine_requirements`, named :class:`EngineLayerError` for what the engine cannot run)
and :func:`run_engine_image`, a numpy interpreter of an image that executes it as the
datapath does (the reference the hardware is tested against).

The engine (architecture (a) of ``docs/large_networks.md``) runs layer after layer on one
runtime-configured datapath. Each layer is described by one descriptor: the fields of
:data:`DESCRIPTOR_FIELDS` packed LSB first (field 0 in bit 0) into :data:`DESCRIPTOR_WORDS`
64-bit little-endian words. The hardware builds its ``data.StructLayout`` from the same
table (``lowbit_hdl.hw.engine``), and the runtime packs descriptors with
:func:`pack_descriptor`. Numpy and the standard library only.

Fields (geometry of one layer; see the module docs of ``lowbit_hdl.hw.engine``):

=============  ==========================================================================
 in_buf         activation buffer the input map is read from (0 or 1)
 out_buf        buffer the output map is written to
 in_h, in_w     input map rows and columns
 in_cf          input channel folds, ``ceil(C / simd)``
 k, stride      kernel size and stride
 pad_t, pad_l   padding rows above and columns left (bottom/right follow from out_h/out_w)
 pad_code       the encoded pad value, replicated into every lane of the pad word
 out_h, out_w   convolution output rows and columns
 nf             neuron folds, ``ceil(out_c / pe)``
 out_c          real output channels (lanes of channels ≥ out_c are written as code 0)
 pool_k         max-pool kernel (1 = no pool), ``pool_s`` stride
 pool_t/l       pool padding above and left
 pool_h/w       rows and columns of the map written (pooled, or the conv output)
 out_cf         channel folds of the written map
 raw            1: the layer emits raw accumulators on the raw stream instead of writing
 acc_shift      raw accumulator = (U << acc_shift) + acc_offset
 acc_offset     (two's complement, 24 bits)
 sf             K·K·in_cf, the weight beats per tile (redundant; checked)
 tile_words     64-bit words per tile (thresholds then weights)
 region         byte offset of the layer's tile region in the DDR image
 last           1 on the final descriptor of a frame
=============  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .accdomain import acc_domain, thresholds_to_u, u_range
from .ddr import WORD_BITS, deinterleave_region, interleave_region
from .ddrimage import REGION_ALIGN as _DDR_REGION_ALIGN
from .dtypes import BIPOLAR, DataType, parse_dtype, signed_bits_for_range
from .words import pack_word, unpack_word

__all__ = ["DESCRIPTOR_FIELDS", "DESCRIPTOR_BITS", "DESCRIPTOR_WORDS", "SIGNED_FIELDS",
           "field_range", "pack_descriptor", "unpack_descriptor"]

#: (name, bits) in packing order, field 0 in the least significant bits
DESCRIPTOR_FIELDS: tuple[tuple[str, int], ...] = (
    ("in_buf", 1), ("out_buf", 1),
    ("in_h", 10), ("in_w", 10), ("in_cf", 8),
    ("k", 5), ("stride", 4), ("pad_t", 4), ("pad_l", 4), ("pad_code", 8),
    ("out_h", 10), ("out_w", 10), ("nf", 10), ("out_c", 13),
    ("pool_k", 3), ("pool_s", 3), ("pool_t", 2), ("pool_l", 2), ("pool_h", 10), ("pool_w", 10),
    ("out_cf", 8),
    ("raw", 1), ("acc_shift", 2), ("acc_offset", 24),
    ("sf", 16), ("tile_words", 20), ("region", 32), ("last", 1),
)
#: fields read as two's complement
SIGNED_FIELDS = frozenset({"acc_offset"})
#: bits of one descriptor
DESCRIPTOR_BITS = sum(b for _, b in DESCRIPTOR_FIELDS)
#: 64-bit words of one descriptor
DESCRIPTOR_WORDS = -(-DESCRIPTOR_BITS // 64)

_BITS = dict(DESCRIPTOR_FIELDS)


def field_range(name: str) -> tuple[int, int]:
    """(lowest, highest) value a field can hold.

    Raises
    ------
    ValueError
        If ``name`` is not a descriptor field.
    """
    if name not in _BITS:
        raise ValueError(f"unknown descriptor field {name!r}")
    b = _BITS[name]
    if name in SIGNED_FIELDS:
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    return 0, (1 << b) - 1


def pack_descriptor(fields: Mapping[str, int], layer: str = "?") -> np.ndarray:
    """One descriptor → :data:`DESCRIPTOR_WORDS` ``uint64`` words.

    Every field of :data:`DESCRIPTOR_FIELDS` must be given, and no other.

    Raises
    ------
    TypeError
        If a value is not an int.
    ValueError
        If a field is missing, unknown or out of its range (the message names ``layer``).
    """
    names = [n for n, _ in DESCRIPTOR_FIELDS]
    missing = [n for n in names if n not in fields]
    extra = [n for n in fields if n not in _BITS]
    if missing or extra:
        raise ValueError(f"layer {layer}: descriptor fields missing {missing}, unknown {extra}")
    word, shift = 0, 0
    for name, bits in DESCRIPTOR_FIELDS:
        v = fields[name]
        if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
            raise TypeError(f"layer {layer}: descriptor field {name}={v!r} must be an int")
        lo, hi = field_range(name)
        if not lo <= int(v) <= hi:
            raise ValueError(f"layer {layer}: descriptor field {name}={int(v)} outside "
                             f"[{lo}, {hi}] ({bits} bits)")
        word |= (int(v) & ((1 << bits) - 1)) << shift
        shift += bits
    return np.array([(word >> (64 * i)) & ((1 << 64) - 1) for i in range(DESCRIPTOR_WORDS)],
                    dtype=np.uint64)


def unpack_descriptor(words: np.ndarray | list[int]) -> dict[str, int]:
    """:data:`DESCRIPTOR_WORDS` words → the field values (inverse of
    :func:`pack_descriptor`)."""
    ws = [int(w) for w in words]
    if len(ws) != DESCRIPTOR_WORDS:
        raise ValueError(f"a descriptor is {DESCRIPTOR_WORDS} words, got {len(ws)}")
    word = sum(w << (64 * i) for i, w in enumerate(ws))
    out, shift = {}, 0
    for name, bits in DESCRIPTOR_FIELDS:
        v = (word >> shift) & ((1 << bits) - 1)
        if name in SIGNED_FIELDS and v >> (bits - 1):
            v -= 1 << bits
        out[name] = v
        shift += bits
    return out


# -- the tile stream (DDR format of one engine layer's weights and thresholds) ---------------
# (section of the datapath helper, h-edp)
#
# One layer's region: NF tiles, tile nf = [threshold words][weight words]. Threshold words
# (none for a raw layer): pe × T thresholds in the U domain, element p·T + t, ``acc_bits``
# bits each, packed by ``words.pack_word`` and cut into 64-bit words (``tile_threshold_words``
# of them). Weight words: SF beats of pe·simd BIPOLAR codes, beat sf = (ky·K + kx)·CF + cf,
# element p·simd + s = code of W[nf·pe + p, ky, kx, cf·simd + s], packed as ``ddr.py`` packs
# beats. Padded neurons (≥ MH) and channels (≥ C) carry code 0 and threshold 0.

__all__ += ["engine_thresholds", "tile_threshold_words", "tile_weight_words",
            "layer_tile_words", "DATAPATH_ERRORS", "ENGINE_PORTS", "interleave_region",
            "deinterleave_region", "sub_region_bytes"]


def _tile_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value} must be ≥ {minimum}")
    return int(value)


def engine_thresholds(act: DataType | None) -> int:
    """Thresholds per channel of an engine layer: ``2^k − 1`` for UINTk, 1 for BIPOLAR, 0 for
    a raw layer (``act`` is ``None``)."""
    if act is None:
        return 0
    if not isinstance(act, DataType):
        raise TypeError(f"act={act!r} must be a DataType or None")
    if act.kind == "int":
        raise ValueError(f"act={act}: engine activations are BIPOLAR or UINTk")
    return 1 if act.is_bipolar else (1 << act.bits) - 1


#: tile-stream widths (64-bit words per beat, one AXI4 read master per word) the engine takes
ENGINE_PORTS = (1, 2, 4)


def tile_threshold_words(pe: int, act: DataType | None, acc_bits: int, ports: int = 1) -> int:
    """64-bit words of thresholds at the head of every tile: ``ceil(pe·T·acc_bits / 64)``
    rounded up to a multiple of ``ports`` (a tile is whole beats of the ``64·ports``-bit
    tile stream; the padding words are 0), 0 for a raw layer."""
    pe, acc_bits = _tile_int("pe", pe), _tile_int("acc_bits", acc_bits)
    ports = _tile_int("ports", ports)
    words = -(-pe * engine_thresholds(act) * acc_bits // WORD_BITS)
    return -(-words // ports) * ports


def tile_weight_words(sf: int, pe: int, simd: int) -> int:
    """64-bit words of weights in every tile: ``SF·pe·simd / 64`` (``pe·simd`` must be a
    multiple of 64)."""
    sf, pe, simd = _tile_int("sf", sf), _tile_int("pe", pe), _tile_int("simd", simd)
    if pe * simd % WORD_BITS:
        raise ValueError(f"pe·simd = {pe * simd} must be a multiple of {WORD_BITS}")
    return sf * pe * simd // WORD_BITS


def layer_tile_words(weights, thresholds_u, act: DataType | None, pe: int, simd: int,
                     acc_bits: int, ports: int = 1) -> np.ndarray:
    """The tile region of one engine layer, 64-bit words (``uint64``).

    Parameters
    ----------
    weights : array_like
        ``(MH, K, K, C)`` BIPOLAR weight values (±1); an FC layer is the conv whose kernel
        covers its input map (the golden model's NHWC flatten order).
    thresholds_u : array_like or None
        ``(MH, T)`` thresholds in the U domain (non-negative, below ``2**acc_bits``), or
        ``None`` for a raw layer (``act`` is ``None``).
    act : DataType or None
        The layer's activation (BIPOLAR or UINTk), ``None`` for raw.
    pe, simd : int
        The datapath's PEs and lanes (``pe·simd`` a multiple of 64).
    acc_bits : int
        Width of a threshold.
    ports : int
        Words per tile-stream beat: the threshold words are padded (zeros) to a multiple of
        it (:func:`tile_threshold_words`).

    Returns
    -------
    numpy.ndarray
        ``NF·(tile_threshold_words + tile_weight_words)`` words, tile after tile, in stream
        order (the DDR order is :func:`interleave_region`'s).

    Raises
    ------
    TypeError
        If a size is not an int or ``act`` not a DataType/None.
    ValueError
        If a shape, a weight value or a threshold is out of range.
    """
    from .ddr import layer_weight_words
    from .dtypes import BIPOLAR

    pe, simd = _tile_int("pe", pe), _tile_int("simd", simd)
    acc_bits = _tile_int("acc_bits", acc_bits)
    nt = engine_thresholds(act)
    w = np.asarray(weights)
    if w.ndim != 4 or w.shape[1] != w.shape[2]:
        raise ValueError(f"weights must be (MH, K, K, C), got shape {w.shape}")
    BIPOLAR.check(w, "weights")
    mh, k, _, c = w.shape
    cf, nf = -(-c // simd), -(-mh // pe)
    sf = k * k * cf
    tw, ww = tile_threshold_words(pe, act, acc_bits, ports), tile_weight_words(sf, pe, simd)
    padded = -np.ones((nf * pe, k, k, cf * simd), dtype=np.int64)  # code 0
    padded[:mh, :, :, :c] = w
    wwords = layer_weight_words(padded.reshape(nf * pe, sf * simd), BIPOLAR, pe, simd)
    wwords = wwords.reshape(nf, ww)
    if act is None:
        if thresholds_u is not None:
            raise ValueError("a raw layer (act=None) has no thresholds")
        return wwords.reshape(-1).astype(np.uint64)
    t = np.asarray(thresholds_u)
    if t.shape != (mh, nt):
        raise ValueError(f"thresholds_u have shape {t.shape}, expected ({mh}, {nt})")
    t = t.astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >> acc_bits):
        raise ValueError(f"U-domain thresholds must lie in [0, 2**{acc_bits})")
    tp = np.zeros((nf * pe, nt), dtype=np.int64)
    tp[:mh] = t
    out = np.zeros((nf, tw + ww), dtype=np.uint64)
    mask = (1 << WORD_BITS) - 1
    for f in range(nf):
        word = pack_word(tp[f * pe:(f + 1) * pe].reshape(-1).tolist(), acc_bits)
        out[f, :tw] = [(word >> (WORD_BITS * j)) & mask for j in range(tw)]  # 0 past the end
        out[f, tw:] = wwords[f]
    return out.reshape(-1)


def sub_region_bytes(desc: Mapping[str, int], ports: int) -> int:
    """Bytes between the sub-regions of a layer's region (:func:`interleave_region`): read
    master ``j`` reads ``nf·tile_words/ports`` words from ``region + j·`` this."""
    return desc["nf"] * desc["tile_words"] // ports * IMAGE_WORD_BITS // 8


#: error codes of the engine datapath (its ``error`` port, set when ``start`` finds the
#: descriptor unusable: the layer is not run and ``done`` follows the next cycle)
DATAPATH_ERRORS: dict[int, str] = {
    1: "sf is not k·k·in_cf, is 0, or exceeds the tile depth max_sf",
    2: "a layer that writes the buffer must read the other one (in_buf == out_buf)",
    3: "a size field is 0 (k, stride, in_h/w/cf, out_h/w, nf, out_c, pool_k/s, pool_h/w, "
       "out_cf)",
    4: "tile_words is not the threshold words (none if raw) plus sf·pe·simd/64",
    5: "the input or the written map does not fit the activation buffer",
    6: "raw layer on a datapath without a raw port",
    7: "nf·pe or out_cf·simd does not cover out_c",
}


# -- the engine compiler: descriptors, tile regions and the DDR image --------------------------
# (section of the control helper, h-ectl)

__all__ += ["IMAGE_WORD_BITS", "REGION_ALIGN", "EngineLayerError", "EngineFormat", "EngineRun",
            "table_words", "map_words", "layer_domain", "engine_descriptors",
            "engine_layer_words", "engine_requirements", "engine_image", "read_descriptors",
            "check_descriptor", "store_map", "load_map", "pool_targets", "write_beat",
            "run_engine_image", "engine_image_bytes", "layer_region_words",
            "pack_engine_image"]
#
# Everything below reads the layers through the attributes of ``lowbit_hdl.ir.LayerInfo``
# (``layer``, ``in_shape``, ``out_shape``, ``in_dtype``, ``mw``, ``mh``, ``pad_value``,
# ``pads``, ``acc_min``, ``acc_max``): the runtime does not import the core, it duck-types.

#: bits of one DDR word of the image
IMAGE_WORD_BITS = WORD_BITS
#: alignment (bytes) of every layer's tile region in the image: that of every DDR region
REGION_ALIGN = _DDR_REGION_ALIGN


class EngineLayerError(ValueError):
    """A layer the engine cannot run, or a descriptor it must reject; the message names the
    layer and the rule."""


@dataclass(frozen=True)
class EngineFormat:
    """The build-time parameters of the engine's datapath that the image format depends on.

    Parameters
    ----------
    pe, simd : int
        Output channels per beat and lanes per PE (one divides the other; ``pe·simd`` a
        multiple of 64, so a weight beat is whole words).
    act : DataType
        The engine activation type ``A``: BIPOLAR or UINTk, k ≤ 4.
    acc_bits : int
        Width of the U-domain accumulator and of a threshold in the tile stream (unsigned).
    buffer_words : int
        Words (``simd`` elements of ``A.bits``) of each of the two activation buffers.
    max_sf : int
        Largest ``K·K·in_cf`` (weight beats per tile).
    raw_bits : int
        Width of a raw output element (0: no raw layer).
    ports : int
        64-bit words per beat of the tile stream (1, 2 or 4; it divides ``pe·simd/64``): the
        sequencer's AXI4 read masters, each reading its sub-region of every layer's region
        (:func:`interleave_region`); tiles are padded to whole beats
        (:func:`tile_threshold_words`).
    """

    pe: int
    simd: int
    act: DataType
    acc_bits: int
    buffer_words: int
    max_sf: int
    raw_bits: int = 0
    ports: int = 1

    def __post_init__(self) -> None:
        for name in ("pe", "simd", "acc_bits", "buffer_words", "max_sf", "raw_bits", "ports"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"EngineFormat.{name} must be an int, got {v!r}")
            if v < (0 if name == "raw_bits" else 1):
                raise ValueError(f"EngineFormat.{name}={v} out of range")
        if not isinstance(self.act, DataType):
            raise TypeError(f"EngineFormat.act must be a DataType, got {self.act!r}")
        if not (self.act.is_bipolar or (self.act.kind == "uint" and self.act.bits <= 4)):
            raise ValueError(f"EngineFormat.act={self.act}: the engine takes BIPOLAR or UINTk "
                             "activations with k ≤ 4")
        if self.pe % self.simd and self.simd % self.pe:
            raise ValueError(f"EngineFormat: one of pe={self.pe}, simd={self.simd} must divide "
                             "the other")
        if self.pe * self.simd % IMAGE_WORD_BITS:
            raise ValueError(f"EngineFormat: pe·simd={self.pe * self.simd} must be a multiple "
                             f"of {IMAGE_WORD_BITS} (a weight beat is whole words)")
        if self.ports not in ENGINE_PORTS:
            raise ValueError(f"EngineFormat.ports={self.ports} must be one of {ENGINE_PORTS}")
        if self.pe * self.simd // IMAGE_WORD_BITS % self.ports:
            raise ValueError(f"EngineFormat: ports={self.ports} does not divide the "
                             f"{self.pe * self.simd // IMAGE_WORD_BITS} words of a weight "
                             "beat (pe·simd/64)")

    @property
    def n_thresholds(self) -> int:
        """Thresholds per output channel (:func:`engine_thresholds`)."""
        return engine_thresholds(self.act)

    def to_json(self) -> dict:
        """The fields, ``act`` by name (``layout.json``)."""
        return {"pe": self.pe, "simd": self.simd, "act": self.act.name,
                "acc_bits": self.acc_bits, "buffer_words": self.buffer_words,
                "max_sf": self.max_sf, "raw_bits": self.raw_bits, "ports": self.ports}

    @classmethod
    def from_json(cls, d: Mapping) -> EngineFormat:
        """Inverse of :meth:`to_json`."""
        return cls(**{**d, "act": parse_dtype(d["act"])})

    def threshold_words(self, raw: bool = False) -> int:
        """64-bit words of a tile's thresholds (:func:`tile_threshold_words`; 0 for a raw
        layer)."""
        return tile_threshold_words(self.pe, None if raw else self.act, self.acc_bits,
                                    self.ports)

    def tile_words(self, sf: int, raw: bool = False) -> int:
        """64-bit words of one tile: the thresholds, then ``sf`` weight beats of ``pe·simd``
        bits (:func:`tile_weight_words`)."""
        return self.threshold_words(raw) + tile_weight_words(sf, self.pe, self.simd)


def table_words(layers: int) -> int:
    """Words of the descriptor table: the layer count, then :data:`DESCRIPTOR_WORDS` per
    layer."""
    return 1 + layers * DESCRIPTOR_WORDS


def _align(nbytes: int) -> int:
    return -(-nbytes // REGION_ALIGN) * REGION_ALIGN


def map_words(h: int, w: int, c: int, simd: int) -> int:
    """Buffer words of an ``h × w × c`` map: ``h·w·ceil(c/simd)``."""
    return h * w * -(-c // simd)


def _groups(infos: Sequence) -> list[tuple[object, object | None]]:
    """Engine layers → (Conv/FC info, the MaxPool info after it or None)."""
    groups: list[list] = []
    for info in infos:
        kind = getattr(info.layer, "kind", None)
        if kind in ("conv", "fc"):
            groups.append([info, None])
        elif kind == "maxpool":
            if not groups:
                raise EngineLayerError(f"layer {info.layer.name}: the engine's max-pool runs "
                                       "on the output of a conv or fc layer (rule: pool after "
                                       "conv/fc)")
            if groups[-1][1] is not None:
                raise EngineLayerError(f"layer {info.layer.name}: one max-pool per conv/fc "
                                       "layer (rule: pool on write)")
            groups[-1][1] = info
        else:
            raise EngineLayerError(f"layer {info.layer.name}: {kind} layers do not run on the "
                                   "engine (rule: conv, fc and max-pool only)")
    if not groups:
        raise EngineLayerError("the engine needs at least one conv or fc layer")
    return [(g[0], g[1]) for g in groups]


def _field_check(name: str, fields: Mapping[str, int], layer: str) -> None:
    lo, hi = field_range(name)
    v = fields[name]
    if not lo <= v <= hi:
        raise EngineLayerError(f"layer {layer}: {name}={v} does not fit its descriptor field "
                               f"[{lo}, {hi}] (rule: field widths)")


def layer_domain(fmt: EngineFormat, sf: int) -> tuple[str, int, int]:
    """``(mode, scale, offset)`` of an engine layer of ``sf`` weight beats: the accumulator
    domain of BIPOLAR weights × ``fmt.act`` over the PADDED width ``sf·simd``
    (:func:`lowbit_hdl.runtime.accdomain.acc_domain`)."""
    return acc_domain(BIPOLAR, fmt.act, sf * fmt.simd)


def engine_descriptors(infos: Sequence, fmt: EngineFormat) -> list[dict[str, int]]:
    """The descriptors of a network's engine layers (geometry only; no weights needed).

    Parameters
    ----------
    infos : sequence of LayerInfo
        The engine part of ``Network.infer()``: Conv/FC layers with BIPOLAR weights whose
        input type is ``fmt.act``, each optionally followed by one MaxPool. The first layer
        reads buffer 0 (the loader's), then the buffers alternate. Only the last layer may
        be raw (``act=None``).
    fmt : EngineFormat
        The datapath's build parameters.

    Returns
    -------
    list of dict
        One dict of :data:`DESCRIPTOR_FIELDS` per Conv/FC layer, with ``region`` the byte
        offset of its tile region in :func:`engine_image`.

    Raises
    ------
    EngineLayerError
        (a ValueError) naming the layer and the rule it breaks.
    """
    if not isinstance(fmt, EngineFormat):
        raise TypeError(f"fmt must be an EngineFormat, got {type(fmt).__name__}")
    groups = _groups(infos)
    simd, pe = fmt.simd, fmt.pe
    region = _align(table_words(len(groups)) * IMAGE_WORD_BITS // 8)
    out: list[dict[str, int]] = []
    in_buf = 0
    prev = (0, 0, 0)
    for n, (info, pool) in enumerate(groups):
        lay = info.layer
        name = lay.name

        def err(rule: str, name: str = name) -> EngineLayerError:
            return EngineLayerError(f"layer {name}: {rule}")

        last = n == len(groups) - 1
        if not lay.weight_dtype.is_bipolar:
            raise err(f"weight type {lay.weight_dtype} is not BIPOLAR (rule: the engine's "
                      "lanes take BIPOLAR weights)")
        if info.in_dtype != fmt.act:
            raise err(f"input type {info.in_dtype} is not the engine's activation type "
                      f"{fmt.act} (rule: one activation type)")
        raw = lay.act is None
        if raw and not last:
            raise err("raw accumulators (act=None) only on the last engine layer (rule: raw "
                      "last)")
        if not raw and lay.act != fmt.act:
            raise err(f"output type {lay.act} is not the engine's activation type {fmt.act} "
                      "(rule: one activation type)")
        if raw and pool is not None:
            raise err(f"a raw layer cannot be pooled ({pool.layer.name}) (rule: raw last)")
        if raw and fmt.raw_bits == 0:
            raise err("raw output but the engine has raw_bits=0 (rule: raw_bits)")
        c, h, w = info.in_shape
        if out and (c, h, w) != prev:
            raise err(f"input map {h}×{w}×{c} is not the output map {prev[1]}×{prev[2]}×"
                      f"{prev[0]} of the layer before (rule: chained layers)")
        if fmt.act.is_bipolar and c % simd:
            raise err(f"BIPOLAR input of {c} channels is not a multiple of simd={simd} "
                      "(rule: BIPOLAR C % simd == 0)")
        if lay.kind == "conv":
            k, stride, pad = lay.kernel, lay.stride, lay.padding
            _, oh, ow = info.out_shape
            pad_code = int(fmt.act.encode(np.array([info.pad_value]))[0]) if pad else 0
            if pad_code and c % simd:
                raise err(f"pad value {info.pad_value} (code {pad_code}) with {c} channels, "
                          f"not a multiple of simd={simd}: the pad word's lanes of the padded "
                          "channels would count (rule: pad_code 0 or C % simd == 0)")
        else:  # an FC is a conv whose kernel covers the whole map
            if h != w:
                raise err(f"fc input map {h}×{w} is not square (rule: FC as a K=H=W conv)")
            k, stride, pad, oh, ow, pad_code = h, 1, 0, 1, 1, 0
        in_cf = -(-c // simd)
        sf = k * k * in_cf
        mh = info.mh
        if sf > fmt.max_sf:
            raise err(f"sf = K·K·in_cf = {sf} exceeds max_sf={fmt.max_sf} (rule: max_sf)")
        if map_words(h, w, c, simd) > fmt.buffer_words:
            raise err(f"input map {h}×{w}×{c} needs {map_words(h, w, c, simd)} buffer words, "
                      f"more than buffer_words={fmt.buffer_words} (rule: buffer size)")
        if pool is None:
            pk, ps, pt, pl, ph, pw = 1, 1, 0, 0, oh, ow
        else:
            pk = pool.layer.kernel
            ps = pool.layer.stride if pool.layer.stride is not None else pk
            pt, pb, pl, pr = pool.pads
            _, ph, pw = pool.out_shape
            for side, v in zip(("top", "bottom", "left", "right"), (pt, pb, pl, pr),
                               strict=True):
                if v >= pk:
                    raise err(f"pool padding {side}={v} is not below the pool kernel {pk} "
                              "(rule: pool padding)")
        if not raw and map_words(ph, pw, mh, simd) > fmt.buffer_words:
            raise err(f"output map {ph}×{pw}×{mh} needs {map_words(ph, pw, mh, simd)} buffer "
                      f"words, more than buffer_words={fmt.buffer_words} (rule: buffer size)")
        mode, scale, offset = layer_domain(fmt, sf)
        lo, hi = u_range(BIPOLAR, fmt.act, sf * simd)
        if hi + 1 >= 1 << fmt.acc_bits:
            raise err(f"U reaches {hi} (+1 for a never-reached threshold), more than "
                      f"acc_bits={fmt.acc_bits} unsigned bits (rule: acc_bits)")
        if raw:
            need = signed_bits_for_range(info.acc_min, info.acc_max)
            if need > fmt.raw_bits:
                raise err(f"raw accumulators need {need} bits, more than raw_bits="
                          f"{fmt.raw_bits} (rule: raw_bits)")
        tw = fmt.tile_words(sf, raw)
        nf = -(-mh // pe)
        d = {
            "in_buf": in_buf, "out_buf": 1 - in_buf, "in_h": h, "in_w": w, "in_cf": in_cf,
            "k": k, "stride": stride, "pad_t": pad, "pad_l": pad, "pad_code": pad_code,
            "out_h": oh, "out_w": ow, "nf": nf, "out_c": mh,
            "pool_k": pk, "pool_s": ps, "pool_t": pt, "pool_l": pl, "pool_h": ph, "pool_w": pw,
            "out_cf": -(-mh // simd), "raw": int(raw),
            "acc_shift": (scale.bit_length() - 1) if raw else 0,
            "acc_offset": offset if raw else 0,
            "sf": sf, "tile_words": tw, "region": region, "last": int(last),
        }
        for f, _ in DESCRIPTOR_FIELDS:
            _field_check(f, d, name)
        out.append(d)
        prev = (mh, ph, pw)
        region += _align(nf * tw * IMAGE_WORD_BITS // 8)
        in_buf = 1 - in_buf
    return out


def engine_layer_words(info, desc: Mapping[str, int], fmt: EngineFormat) -> np.ndarray:
    """The tile region of one engine layer, from its LayerInfo
    (:func:`layer_region_words`)."""
    return layer_region_words(info.weight_matrix(), info.layer.thresholds, desc, fmt,
                              info.layer.name)


def layer_region_words(weights, thresholds, desc: Mapping[str, int], fmt: EngineFormat,
                       layer: str = "?") -> np.ndarray:
    """The tile region of one engine layer (:func:`layer_tile_words`): its ``(MH, MW)``
    weight matrix (im2col order ``[ky][kx][c]``; an FC's matrix is the conv whose kernel
    covers its map) as ``(MH, K, K, C)``, and its ``(MH, T)`` thresholds (``None`` for a raw
    layer) converted to the U domain of the PADDED width ``sf·simd``
    (:func:`lowbit_hdl.runtime.accdomain.thresholds_to_u`).

    Returns
    -------
    numpy.ndarray
        ``nf·tile_words`` uint64 words.

    Raises
    ------
    EngineLayerError
        If the matrix does not match the descriptor or thresholds are missing.
    """
    k = desc["k"]
    w = np.asarray(weights, dtype=np.int64)
    if w.ndim != 2 or w.shape[1] % (k * k) or -(-w.shape[0] // fmt.pe) != desc["nf"] \
            or -(-(w.shape[1] // (k * k)) // fmt.simd) != desc["in_cf"]:
        raise EngineLayerError(f"layer {layer}: weights of shape {w.shape} do not match its "
                               f"descriptor (k={k}, in_cf={desc['in_cf']}, nf={desc['nf']})")
    mh, c = w.shape[0], w.shape[1] // (k * k)
    t = None
    if not desc["raw"]:
        if thresholds is None:
            raise EngineLayerError(f"layer {layer}: no thresholds for its activation")
        t = thresholds_to_u(thresholds, BIPOLAR, fmt.act, desc["sf"] * fmt.simd)
    out = layer_tile_words(w.reshape(mh, k, k, c), t, None if desc["raw"] else fmt.act,
                           fmt.pe, fmt.simd, fmt.acc_bits, fmt.ports)
    assert out.size == desc["nf"] * desc["tile_words"], (out.size, desc)
    return out


def pack_engine_image(descs: Sequence[Mapping[str, int]], fmt: EngineFormat,
                      weights: Sequence, thresholds: Sequence,
                      names: Sequence[str] | None = None) -> np.ndarray:
    """The engine's DDR image (64-bit words, relative to its region's start): word 0 the
    number of layers, the packed descriptors (:func:`pack_descriptor`,
    :data:`DESCRIPTOR_WORDS` each), then each layer's tile region
    (:func:`layer_region_words` of ``weights[n]``, ``thresholds[n]``, in the DDR order of
    :func:`interleave_region` for ``fmt.ports`` read masters) at its ``region`` byte
    offset, 4 KiB aligned, zeros between. ``.astype("<u8").tobytes()`` gives the bytes."""
    names = list(names) if names is not None else [f"#{n}" for n in range(len(descs))]
    image = np.zeros(engine_image_bytes(descs)[0] // 8, dtype=np.uint64)
    image[0] = len(descs)
    for n, d in enumerate(descs):
        base = 1 + n * DESCRIPTOR_WORDS
        image[base:base + DESCRIPTOR_WORDS] = pack_descriptor(d, names[n])
        words = interleave_region(layer_region_words(weights[n], thresholds[n], d, fmt,
                                                     names[n]), fmt.ports)
        image[d["region"] // 8:d["region"] // 8 + words.size] = words
    return image


def engine_requirements(infos: Sequence, pe: int, simd: int, act: DataType) -> dict[str, int]:
    """The smallest ``acc_bits``, ``buffer_words``, ``max_sf`` and ``raw_bits`` of an
    :class:`EngineFormat` with these ``pe``, ``simd`` and ``act`` that runs ``infos`` (the
    engine layers, as :func:`engine_descriptors` takes them): the widest U-domain threshold
    (``u_hi + 1`` of the padded width), the largest map in words, the largest ``sf``, the
    raw layer's accumulator bits (0 without one).

    Raises
    ------
    EngineLayerError
        For a layer the engine cannot run whatever these sizes (types, field widths, …).
    """
    loose = EngineFormat(pe, simd, act, acc_bits=62, buffer_words=1 << 40,
                         max_sf=field_range("sf")[1], raw_bits=64)
    descs = engine_descriptors(infos, loose)
    groups = _groups(infos)
    acc = max(u_range(BIPOLAR, act, d["sf"] * simd)[1] + 1 for d in descs).bit_length()
    words = max(max(d["in_h"] * d["in_w"] * d["in_cf"],
                    0 if d["raw"] else d["pool_h"] * d["pool_w"] * d["out_cf"]) for d in descs)
    raw = max([signed_bits_for_range(info.acc_min, info.acc_max)
               for (info, _), d in zip(groups, descs, strict=True) if d["raw"]], default=0)
    return {"acc_bits": acc, "buffer_words": words, "max_sf": max(d["sf"] for d in descs),
            "raw_bits": raw}


def engine_image_bytes(descs: Sequence[Mapping[str, int]]) -> tuple[int, int]:
    """Bytes of the engine image whose descriptors are ``descs`` (:func:`engine_descriptors`):
    its size (up to the end of the last layer's region, 4 KiB aligned) and the bytes the
    sequencer reads per frame (the table and every layer's tiles)."""
    last = descs[-1]
    read = table_words(len(descs)) * 8 + sum(d["nf"] * d["tile_words"] * 8 for d in descs)
    return last["region"] + _align(last["nf"] * last["tile_words"] * 8), read


def engine_image(infos: Sequence, fmt: EngineFormat) -> np.ndarray:
    """The engine's DDR image of a network's engine layers (:func:`pack_engine_image` of
    :func:`engine_descriptors` and the layers' weights and thresholds).

    Raises
    ------
    EngineLayerError
        As :func:`engine_descriptors`.
    """
    descs = engine_descriptors(infos, fmt)
    convs = [c for c, _ in _groups(infos)]
    return pack_engine_image(descs, fmt, [c.weight_matrix() for c in convs],
                             [c.layer.thresholds for c in convs],
                             [c.layer.name for c in convs])


def read_descriptors(image: np.ndarray | Sequence[int]) -> list[dict[str, int]]:
    """The descriptor table at the start of an image (inverse of the table part of
    :func:`engine_image`)."""
    img = np.asarray(image, dtype=np.uint64)
    n = int(img[0])
    if n < 1 or table_words(n) > img.size:
        raise ValueError(f"image: {n} layers in the descriptor table of a {img.size}-word "
                         "image")
    return [unpack_descriptor(img[1 + i * DESCRIPTOR_WORDS:1 + (i + 1) * DESCRIPTOR_WORDS])
            for i in range(n)]


def check_descriptor(d: Mapping[str, int], fmt: EngineFormat, layer: str = "?") -> None:
    """The checks the sequencer makes before running a descriptor (a bad one sets an error
    code instead of hanging): ``sf = K·K·in_cf`` with ``1 ≤ sf ≤ max_sf``, ``nf ≥ 1``,
    ``in_buf ≠ out_buf`` unless raw, sizes ≥ 1, ``tile_words`` as
    :meth:`EngineFormat.tile_words`, maps within ``buffer_words``, ``nf·pe`` and
    ``out_cf·simd`` covering ``out_c``, no raw layer without ``raw_bits`` (the rules of
    :data:`DATAPATH_ERRORS`).

    Raises
    ------
    EngineLayerError
        Naming the layer and the broken rule.
    """
    def bad(rule: str) -> EngineLayerError:
        return EngineLayerError(f"descriptor of layer {layer}: {rule}")

    for f in ("k", "stride", "pool_k", "pool_s", "nf", "in_h", "in_w", "in_cf", "out_h",
              "out_w", "pool_h", "pool_w", "out_c", "out_cf"):
        if d[f] < 1:
            raise bad(f"{f}={d[f]} must be ≥ 1")
    if d["sf"] != d["k"] * d["k"] * d["in_cf"] or not 1 <= d["sf"] <= fmt.max_sf:
        raise bad(f"sf={d['sf']} must be K·K·in_cf = {d['k'] * d['k'] * d['in_cf']} and at "
                  f"most max_sf={fmt.max_sf}")
    if d["in_buf"] == d["out_buf"] and not d["raw"]:
        raise bad("in_buf == out_buf (a layer that writes must read the other buffer)")
    if d["tile_words"] != fmt.tile_words(d["sf"], bool(d["raw"])):
        raise bad(f"tile_words={d['tile_words']} is not {fmt.tile_words(d['sf'], bool(d['raw']))}")
    if d["in_h"] * d["in_w"] * d["in_cf"] > fmt.buffer_words:
        raise bad("input map exceeds buffer_words")
    if not d["raw"] and d["pool_h"] * d["pool_w"] * d["out_cf"] > fmt.buffer_words:
        raise bad("output map exceeds buffer_words")
    if d["nf"] * fmt.pe < d["out_c"] or d["out_cf"] * fmt.simd < d["out_c"]:
        raise bad(f"nf·pe = {d['nf'] * fmt.pe} or out_cf·simd = {d['out_cf'] * fmt.simd} does "
                  f"not cover out_c={d['out_c']}")
    if d["raw"] and fmt.raw_bits == 0:
        raise bad("raw layer on an engine without raw output")


@dataclass
class EngineRun:
    """What :func:`run_engine_image` produced.

    ``output``: the final map ``(H, W, C)``: activation codes from the final buffer, or the
    signed raw accumulators of a raw last layer; ``raw_beats``: the raw stream, one row of
    ``pe`` signed values per beat in emission order (tile-major: ``nf``, then pixels), every
    lane emitted (lanes ≥ out_c included), empty without a raw layer; ``buffers``: the two
    activation buffers at the end, ``(buffer_words, simd)`` codes.
    """

    output: np.ndarray
    raw_beats: np.ndarray
    buffers: list[np.ndarray]


def store_map(buf: np.ndarray, codes: np.ndarray, simd: int) -> None:
    """Write an ``(H, W, C)`` map of codes into a buffer ``(words, simd)`` in the engine's
    layout: word ``(y·W + x)·CF + cf``, lane ``s`` = channel ``cf·simd + s``, lanes of
    channels ≥ C code 0."""
    h, w, c = codes.shape
    cf = -(-c // simd)
    padded = np.zeros((h, w, cf * simd), dtype=buf.dtype)
    padded[..., :c] = codes
    buf[:h * w * cf] = padded.reshape(h * w * cf, simd)


def load_map(buf: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """The ``(H, W, C)`` codes of a map stored by :func:`store_map`."""
    simd = buf.shape[1]
    cf = -(-c // simd)
    return buf[:h * w * cf].reshape(h, w, cf * simd)[..., :c].copy()


def _tile(words: np.ndarray, d: Mapping[str, int], fmt: EngineFormat
          ) -> tuple[np.ndarray | None, np.ndarray]:
    """One tile's (thresholds (pe, T) or None, weight codes (pe, sf·simd))."""
    tw = fmt.threshold_words(bool(d["raw"]))
    thr = None
    if tw:
        word = pack_word([int(v) for v in words[:tw]], IMAGE_WORD_BITS)
        vals = unpack_word(word, fmt.acc_bits, fmt.pe * fmt.n_thresholds)
        thr = np.array(vals, dtype=np.int64).reshape(fmt.pe, fmt.n_thresholds)
    wb = np.ascontiguousarray(words[tw:]).astype("<u8").view(np.uint8)
    bits = np.unpackbits(wb, bitorder="little").reshape(d["sf"], fmt.pe, fmt.simd)
    return thr, bits.transpose(1, 0, 2).reshape(fmt.pe, -1).astype(np.int64)


def pool_targets(d: Mapping[str, int], oy: int, ox: int) -> list[tuple[int, int, bool]]:
    """The pooled positions ``(py, px, first)`` an output pixel ``(oy, ox)`` of a layer with
    descriptor ``d`` contributes to, in raster order; ``first``: it is the position's first
    contributor in raster order (at ``(max(py·s − pool_t, 0), max(px·s − pool_l, 0))``),
    which writes instead of taking the maximum. Without a pool: ``[(oy, ox, True)]``."""
    pk, ps, pt, pl = d["pool_k"], d["pool_s"], d["pool_t"], d["pool_l"]
    out = []
    for py in range(max(0, -(-(oy + pt - pk + 1) // ps)),
                    min(d["pool_h"] - 1, (oy + pt) // ps) + 1):
        for px in range(max(0, -(-(ox + pl - pk + 1) // ps)),
                        min(d["pool_w"] - 1, (ox + pl) // ps) + 1):
            out.append((py, px, oy == max(py * ps - pt, 0) and ox == max(px * ps - pl, 0)))
    return out


def write_beat(buf: np.ndarray, d: Mapping[str, int], fmt: EngineFormat, nf: int, oy: int,
               ox: int, codes: np.ndarray) -> None:
    """The writer: one output beat (``pe`` codes of channels ``nf·pe …`` of conv pixel
    ``(oy, ox)``) into the output buffer through the pool (:func:`pool_targets`).

    For each target ``(py, px)``: channel ``ch`` goes to word
    ``(py·pool_w + px)·out_cf + ch // simd``, lane ``ch % simd``; channels ≥ ``out_c`` are
    written as code 0; words ``≥ out_cf`` of the pixel are not written (``pe > simd``, last
    tile); with ``pe < simd`` the last tile (``nf = NF − 1``) also writes code 0 into the
    lanes above it in its word (channels ``NF·pe …``, never written by any tile otherwise).
    The first contributor writes, the others write ``max(old, new)`` lane-wise (codes
    compare unsigned; for BIPOLAR this is the OR). Other lanes keep their value (lane-masked
    writes)."""
    pe, simd = fmt.pe, fmt.simd
    ch = nf * pe + np.arange(pe)
    vals = np.where(ch < d["out_c"], codes, 0)
    if pe < simd and nf == d["nf"] - 1:
        top = -(-(nf * pe + pe) // simd) * simd  # end of the beat's word
        ch = np.arange(nf * pe, top)
        vals = np.concatenate([vals, np.zeros(top - nf * pe - pe, dtype=vals.dtype)])
    keep = ch // simd < d["out_cf"]
    ch, vals = ch[keep], vals[keep]
    for py, px, first in pool_targets(d, oy, ox):
        words = (py * d["pool_w"] + px) * d["out_cf"] + ch // simd
        lanes = ch % simd
        buf[words, lanes] = vals if first else np.maximum(buf[words, lanes], vals)


def run_engine_image(image_words, input_map_codes, fmt: EngineFormat,
                     seed: int | None = 0) -> EngineRun:
    """Execute an engine image as the datapath does (the reference of the hardware format).

    Reads the descriptor table, puts ``input_map_codes`` (``(H, W, C)`` codes of ``fmt.act``,
    the loader's map) into buffer 0, then for each descriptor: checks it
    (:func:`check_descriptor`), reads its tile region, and for every tile ``nf`` and output
    pixel (raster order) forms the window of buffer words ``(y·W + x)·in_cf + cf`` (the pad
    word, every lane ``pad_code``, outside the map), computes ``U`` per output channel
    (``"xnor"``: popcount of XNOR; ``"bits"``: ``Σ ±x − offset``), and either emits
    ``(U << acc_shift) + acc_offset`` on the raw stream, or compares ``U`` with the tile's
    thresholds (code = number of thresholds ≤ U) and writes the beat with
    :func:`write_beat` (pool on write, no clearing pass).

    ``seed``: the buffers start with random codes from this seed (what an earlier frame
    left: nothing may rely on zeroed buffers); ``None`` starts from zeros.

    Raises
    ------
    EngineLayerError
        For a descriptor :func:`check_descriptor` rejects, or an input map that does not
        match the first descriptor.
    """
    img = np.asarray(image_words, dtype=np.uint64)
    descs = read_descriptors(img)
    pe, simd = fmt.pe, fmt.simd
    shape = (fmt.buffer_words, simd)
    if seed is None:
        bufs = [np.zeros(shape, dtype=np.int64) for _ in range(2)]
    else:
        rng = np.random.default_rng(seed)
        bufs = [rng.integers(0, 1 << fmt.act.bits, shape) for _ in range(2)]
    x = np.asarray(input_map_codes, dtype=np.int64)
    d0 = descs[0]
    if x.ndim != 3 or x.shape[:2] != (d0["in_h"], d0["in_w"]) or \
            -(-x.shape[2] // simd) != d0["in_cf"] or d0["in_buf"] != 0:
        raise EngineLayerError(f"input map of shape {x.shape} does not match the first "
                               f"descriptor ({d0['in_h']}×{d0['in_w']}, in_cf={d0['in_cf']}, "
                               f"in_buf={d0['in_buf']}; the loader writes buffer 0)")
    store_map(bufs[0], x, simd)
    raw_beats: list[np.ndarray] = []
    output = None
    for n, d in enumerate(descs):
        check_descriptor(d, fmt, str(n))
        src, dst = bufs[d["in_buf"]], bufs[d["out_buf"]]
        k, s, cf = d["k"], d["stride"], d["in_cf"]
        oh, ow, nf = d["out_h"], d["out_w"], d["nf"]
        # window word addresses (P, K, K, CF); −1 = the pad word
        oy = np.arange(oh)[:, None, None, None, None] * s - d["pad_t"]
        ox = np.arange(ow)[None, :, None, None, None] * s - d["pad_l"]
        ky = np.arange(k)[None, None, :, None, None]
        kx = np.arange(k)[None, None, None, :, None]
        y, xx = oy + ky, ox + kx
        inside = (y >= 0) & (y < d["in_h"]) & (xx >= 0) & (xx < d["in_w"])
        addr = (y * d["in_w"] + xx) * cf + np.arange(cf)[None, None, None, None, :]
        addr = np.where(inside, addr, -1).reshape(oh * ow, -1)
        padword = np.full((1, simd), d["pad_code"], dtype=np.int64)
        a = np.concatenate([src, padword])[addr].reshape(oh * ow, -1)  # (P, sf·simd)
        mode, _, offset = layer_domain(fmt, d["sf"])
        region = img[d["region"] // 8:d["region"] // 8 + nf * d["tile_words"]]
        if region.size != nf * d["tile_words"]:
            raise EngineLayerError(f"descriptor of layer {n}: region beyond the image")
        region = deinterleave_region(region, fmt.ports)
        raw = np.zeros((oh * ow, nf * pe), dtype=np.int64)
        for f in range(nf):
            thr, w = _tile(region[f * d["tile_words"]:(f + 1) * d["tile_words"]], d, fmt)
            if mode == "xnor":
                u = a @ w.T + (1 - a) @ (1 - w).T
            else:
                u = a @ (2 * w - 1).T - offset
            if d["raw"]:
                beats = (u << d["acc_shift"]) + d["acc_offset"]
                raw_beats.append(beats)
                raw[:, f * pe:(f + 1) * pe] = beats
                continue
            codes = (u[:, :, None] >= thr[None]).sum(-1)
            for p in range(oh * ow):
                write_beat(dst, d, fmt, f, p // ow, p % ow, codes[p])
        if d["raw"]:
            output = raw[:, :d["out_c"]].reshape(oh, ow, d["out_c"])
        else:
            output = load_map(dst, d["pool_h"], d["pool_w"], d["out_c"])
    rb = np.concatenate(raw_beats) if raw_beats else np.zeros((0, pe), dtype=np.int64)
    return EngineRun(output, rb, bufs)
