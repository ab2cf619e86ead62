"""The engine descriptor as an Amaranth ``data.StructLayout``, built from
:data:`lowbit_hdl.runtime.engine.DESCRIPTOR_FIELDS` (the one owner of the fields, their widths
and their order): field 0 in the least significant bits, so the :data:`DESCRIPTOR_WORDS`
64-bit words of a descriptor, concatenated word 0 first, are a value of this layout."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from ...runtime.engine import DESCRIPTOR_BITS, DESCRIPTOR_FIELDS, DESCRIPTOR_WORDS, SIGNED_FIELDS

__all__ = ["descriptor_layout", "DESCRIPTOR_BITS", "DESCRIPTOR_WORDS"]


def descriptor_layout() -> data.StructLayout:
    """``data.StructLayout`` of one descriptor (``acc_offset`` signed, the rest unsigned)."""
    return data.StructLayout({name: signed(bits) if name in SIGNED_FIELDS else unsigned(bits)
                              for name, bits in DESCRIPTOR_FIELDS})
