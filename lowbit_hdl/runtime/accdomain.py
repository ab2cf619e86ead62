"""The accumulator domain of a low-bit dot product: the one owner of the rule that maps an
accumulator ``acc`` to the unsigned count ``U`` the hardware adds up, and of the conversion
of thresholds into that domain.

A Conv/FC unit (:class:`lowbit_hdl.hw.mvtu.MVTU`, the engine's datapath) computes
``acc = scale·U + offset`` with (:func:`acc_domain`):

* ``"xnor"``: BIPOLAR weights × BIPOLAR inputs; ``U`` = popcount of the XNORs, ``scale = 2``,
  ``offset = −MW``.
* ``"bits"``: small integer products (at most :data:`MAX_BIT_PRODUCTS` one-bit partial
  products per lane), every lane a bit matrix of non-negative terms plus a constant
  (:func:`lane_products`, Baugh-Wooley for negative terms); ``U ≥ 0``, ``scale = 1``,
  ``offset = MW · lane constant``.
* ``"mul"``: wider products, multiplied and added; ``U = acc`` (``scale 1``, ``offset 0``).

A threshold ``T`` becomes ``ceil((T − offset) / scale)`` (``acc ≥ T ⟺ U ≥`` that), clipped to
``[u_lo, u_hi + 1]`` (every comparison over the reachable ``U`` unchanged):
:func:`thresholds_to_u`. Numpy and the standard library only (the hardware and the engine's
runtime packer both call it).
"""

from __future__ import annotations

import numpy as np

from .dtypes import DataType

__all__ = ["MAX_BIT_PRODUCTS", "MODES", "operand_bits", "partial_products", "product_range",
           "lane_products", "lane_constant", "acc_domain", "u_range", "thresholds_to_u"]

#: lanes with at most this many 1-bit partial products use the bit-matrix form ("bits"):
#: LUTs; wider ones (e.g. INT8×UINT8) multiply ("mul"), which maps to DSPs
MAX_BIT_PRODUCTS = 16
#: accumulation modes, see the module docstring
MODES = ("xnor", "bits", "mul")

#: one operand bit of a lane product: ("x", bit) of the input or ("w", bit) of the weight
Operand = tuple[str, int]
#: one signed term ``coef · op(operands)`` (op "bit": the bit itself; "and"; "xnor")
Product = tuple[int, tuple[Operand, ...], str]


def _check(weight_dtype: object, in_dtype: object) -> None:
    for name, dt in (("weight_dtype", weight_dtype), ("in_dtype", in_dtype)):
        if not isinstance(dt, DataType):
            raise TypeError(f"{name} must be a DataType, got {dt!r}")


def operand_bits(dt: DataType) -> tuple[list[tuple[int, int]], int]:
    """``dt`` values as ``Σ weight·bit + const``: ``([(bit index, signed weight)], const)``."""
    if dt.is_bipolar:
        return [(0, 2)], -1
    if dt.kind == "uint":
        return [(j, 1 << j) for j in range(dt.bits)], 0
    return ([(j, 1 << j) for j in range(dt.bits - 1)] + [(dt.bits - 1, -(1 << (dt.bits - 1)))],
            0)


def partial_products(wdt: DataType, xdt: DataType) -> int:
    """Two-input terms per lane (the cost driver of the bit-matrix form)."""
    if wdt.is_bipolar != xdt.is_bipolar:
        return (xdt if wdt.is_bipolar else wdt).bits
    return len(operand_bits(wdt)[0]) * len(operand_bits(xdt)[0])


def product_range(wdt: DataType, xdt: DataType) -> tuple[int, int]:
    """(lowest, highest) product of one weight and one input."""
    prods = [a * b for a in (wdt.min, wdt.max) for b in (xdt.min, xdt.max)]
    return min(prods), max(prods)


def lane_products(xdt: DataType, wdt: DataType) -> tuple[list[Product], int]:
    """One lane product ``w · x`` as signed one-bit terms plus a constant:
    ``w·x = Σ coef · op(operands) + const`` over the encoded bits (each ``|coef|`` a power
    of two). :func:`lowbit_hdl.hw.bitmatrix.lane_terms` builds its bit matrix from these."""
    prods: list[Product] = []
    if wdt.is_bipolar != xdt.is_bipolar:
        # conditional negation: with t_j = XNOR(y_j, b), Σ c_j t_j is y for b = 1 and
        # S − y for b = 0 (S = Σ c_j), so b ? y : −y = Σ c_j t_j − S + S·b
        b, (y, ydt) = (("w", 0), ("x", xdt)) if wdt.is_bipolar else (("x", 0), ("w", wdt))
        ys, _ = operand_bits(ydt)
        s = sum(c for _, c in ys)
        for j, c in ys:
            prods.append((c, ((y, j), b), "xnor"))
        if s > 0:  # S·b = 2^k·b − b  (S = 2^k − 1)
            prods.append((s + 1, (b,), "bit"))
            prods.append((-1, (b,), "bit"))
        else:  # S = −1
            prods.append((-1, (b,), "bit"))
        return prods, -s
    xs, a = operand_bits(xdt)
    ws, b = operand_bits(wdt)
    for i, ka in xs:
        for j, kb in ws:
            prods.append((ka * kb, (("x", i), ("w", j)), "and"))
    if b:
        for i, ka in xs:
            prods.append((ka * b, (("x", i),), "bit"))
    if a:
        for j, kb in ws:
            prods.append((kb * a, (("w", j),), "bit"))
    return prods, a * b


def lane_constant(xdt: DataType, wdt: DataType) -> int:
    """The constant ``c`` of one lane in the bit-matrix form: ``w·x = u + c`` with ``u ≥ 0``
    the lane's bit-matrix sum (a negative term ``−2^e·t`` is ``2^e·(1 − t) − 2^e``)."""
    prods, const = lane_products(xdt, wdt)
    return const + sum(k for k, _, _ in prods if k < 0)


def acc_domain(weight_dtype: DataType, in_dtype: DataType, mw: int) -> tuple[str, int, int]:
    """``(mode, scale, offset)`` of a dot product of ``mw`` lanes: ``acc = scale·U + offset``
    (module docstring).

    Raises
    ------
    TypeError
        If a dtype is not a DataType or ``mw`` not an int.
    ValueError
        If ``mw < 1``.
    """
    _check(weight_dtype, in_dtype)
    if not isinstance(mw, (int, np.integer)) or isinstance(mw, bool):
        raise TypeError(f"mw must be an int, got {mw!r}")
    if mw < 1:
        raise ValueError(f"mw={mw} must be ≥ 1")
    mw = int(mw)
    if weight_dtype.is_bipolar and in_dtype.is_bipolar:
        return "xnor", 2, -mw
    if partial_products(weight_dtype, in_dtype) <= MAX_BIT_PRODUCTS:
        return "bits", 1, mw * lane_constant(in_dtype, weight_dtype)
    return "mul", 1, 0


def u_range(weight_dtype: DataType, in_dtype: DataType, mw: int) -> tuple[int, int]:
    """(lowest, highest) ``U`` of a dot product of ``mw`` lanes (:func:`acc_domain`)."""
    _, scale, offset = acc_domain(weight_dtype, in_dtype, mw)
    lo, hi = product_range(weight_dtype, in_dtype)
    return (lo * mw - offset) // scale, (hi * mw - offset) // scale


def thresholds_to_u(thresholds, weight_dtype: DataType, in_dtype: DataType,
                    mw: int) -> np.ndarray:
    """Thresholds on ``acc`` → thresholds on ``U``: ``ceil((T − offset)/scale)`` clipped to
    ``[u_lo, u_hi + 1]`` (:func:`u_range`), so ``acc ≥ T ⟺ U ≥ result`` for every reachable
    ``U``. Returns int64 of the shape of ``thresholds``."""
    _, scale, offset = acc_domain(weight_dtype, in_dtype, mw)
    lo, hi = u_range(weight_dtype, in_dtype, mw)
    t = np.asarray(thresholds, dtype=np.int64)
    return np.clip(-((-(t - offset)) // scale), lo, hi + 1)
