"""Stream payloads that are vectors of elements.

A payload of ``count`` elements is an :class:`amaranth.lib.data.ArrayLayout`: element 0 sits
in the lowest bits, so the Verilog port is the flat vector of ``count·bits`` bits that
:func:`lowbit_hdl.sim.stream.pack` builds and that :mod:`lowbit_hdl.runtime.layout` describes.
Inside a module, ``payload[j]`` is element ``j`` with its own shape (signed for ``INTk``).

The layouts are :class:`FlatArrayLayout` s: they behave as ``ArrayLayout`` but show a value as
one number in the netlist and in waveforms, so the generated Verilog is exactly that of a
flat ``unsigned(count·bits)`` payload (see the class for why).
"""

from __future__ import annotations

from amaranth.hdl import Format, Shape, ShapeCastable, Value, signed, unsigned
from amaranth.lib import data

from ..runtime.dtypes import DataType
from .params import check_dtype, check_int

__all__ = ["FlatArrayLayout", "elem_shape", "vector", "payload_shape"]


class FlatArrayLayout(data.ArrayLayout):
    """An :class:`~amaranth.lib.data.ArrayLayout` whose values are formatted as one number.

    For a signal of a plain ``ArrayLayout`` Amaranth adds one named alias wire per element to
    the generated Verilog (``wire [7:0] \\x1[3] ; assign \\x1[3] = x1[31:24];``). Those
    names are the very names synthesis gives to bus bits: Yosys 0.70's ABC9 flow aborts on
    them (``Assert `count_id(wire->name) == 0'``), and they add thousands of lines to a
    network's Verilog. Overriding :meth:`format` (the hook that describes a value for
    debugging: Verilog field wires, VCD, ``Print``) leaves the whole signal as the only name.
    Everything else (element shapes, ``payload[j]``, equality with ``ArrayLayout``) is
    unchanged.
    """

    def __repr__(self) -> str:
        return f"FlatArrayLayout({self.elem_shape!r}, {self.length})"

    def format(self, value: object, format_spec: str) -> Format:
        if format_spec != "":
            raise ValueError(f"Format specifier {format_spec!r} is not supported for layouts")
        return Format("{}", Value.cast(value))


def elem_shape(dtype: DataType) -> Shape:
    """Amaranth shape of one element of ``dtype``.

    Parameters
    ----------
    dtype : DataType
        Element type.

    Returns
    -------
    Shape
        ``signed(k)`` for ``INTk``; ``unsigned(k)`` for ``UINTk`` and ``unsigned(1)`` for
        BIPOLAR (the encoded bit, 1 = +1).

    Raises
    ------
    TypeError
        If ``dtype`` is not a :class:`~lowbit_hdl.runtime.dtypes.DataType`.
    """
    check_dtype("dtype", dtype)
    # not ``dtype.signed``: a BIPOLAR value (±1) is stored as its encoded bit
    return signed(dtype.bits) if dtype.kind == "int" else unsigned(dtype.bits)


def vector(elem: DataType | Shape | int, count: int) -> data.ArrayLayout:
    """Layout of a payload of ``count`` elements, element 0 in the lowest bits.

    Parameters
    ----------
    elem : DataType, Shape or int
        Element type: a DataType (see :func:`elem_shape`), an Amaranth shape, or a bit count
        (an unsigned element: an opaque bit pattern such as an encoded value).
    count : int
        Elements per payload, ≥ 1.

    Returns
    -------
    FlatArrayLayout
        ``ArrayLayout(shape, count)`` (displayed flat); its size is ``count`` times the
        element width.

    Raises
    ------
    TypeError
        If ``elem`` or ``count`` has the wrong type.
    ValueError
        If ``count`` or a bit count ``elem`` is below 1.
    """
    if isinstance(elem, DataType):
        shape = elem_shape(elem)
    elif isinstance(elem, Shape):
        shape = elem
    elif isinstance(elem, int) and not isinstance(elem, bool):
        shape = unsigned(check_int("elem", elem))
    else:
        raise TypeError(f"elem={elem!r} must be a DataType, an Amaranth Shape or a bit count")
    return FlatArrayLayout(shape, check_int("count", count))


def payload_shape(shape: int | Shape | ShapeCastable, what: str) -> Shape | ShapeCastable:
    """``shape`` as the payload shape of a buffer that does not look inside its words.

    Parameters
    ----------
    shape : int, Shape or ShapeCastable
        A bit count (an unsigned word of that many bits) or an Amaranth shape or
        shape-castable, e.g. the :class:`~amaranth.lib.data.ArrayLayout` of the owner's
        payload (kept, so that the buffer's stream connects to the owner's port directly).
    what : str
        Name of the caller for error messages.

    Returns
    -------
    Shape or ShapeCastable

    Raises
    ------
    TypeError
        If ``shape`` is neither a bit count nor an Amaranth shape.
    ValueError
        If it is less than one bit wide.
    """
    if isinstance(shape, int) and not isinstance(shape, bool):
        return unsigned(check_int(f"{what}: width", shape))
    if not isinstance(shape, (Shape, ShapeCastable)):
        raise TypeError(f"{what}: shape={shape!r} must be a bit count or an Amaranth shape")
    if Shape.cast(shape).width < 1:
        raise ValueError(f"{what}: shape={shape!r} must be at least 1 bit wide")
    return shape
