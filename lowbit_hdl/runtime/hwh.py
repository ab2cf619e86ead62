"""Reading the Vivado hardware hand-off file (``.hwh``) next to a bitstream.

Only what the runtime needs: whether the AXI DMA exists under the expected instance name,
its stream widths (checked against ``layout.json``) and its largest transfer. Standard
library only; PYNQ reads the same file when it loads the overlay.

A ``.hwh`` is XML; every IP is a ``MODULE`` element (``INSTANCE``, ``FULLNAME``,
``MODTYPE``, ``VLNV`` attributes) with ``PARAMETERS/PARAMETER`` children (``NAME``,
``VALUE``). The AXI DMA's parameters appear in upper and lower case; look-ups here ignore
case.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HwhError", "HwhModule", "DmaConfig", "read_hwh", "dma_config"]

#: pynq's default when the DMA does not state its length-register width
MAX_SG_LENGTH_WIDTH = 26


class HwhError(ValueError):
    """A missing or malformed ``.hwh`` file, or one without the expected DMA."""


@dataclass(frozen=True)
class HwhModule:
    """One IP instance of the block design."""

    instance: str
    fullname: str
    modtype: str
    vlnv: str
    parameters: dict[str, str]  # lower-case names

    def param(self, name: str, default: str | None = None) -> str | None:
        """Parameter value by case-insensitive name."""
        return self.parameters.get(name.lower(), default)

    def int_param(self, name: str, default: int | None = None) -> int | None:
        v = self.param(name)
        if v is None:
            return default
        text = str(v).strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text)
        except ValueError as e:
            raise HwhError(f"{self.instance}: parameter {name}={v!r} is not an integer") from e


@dataclass(frozen=True)
class DmaConfig:
    """What the runtime uses of an AXI DMA instance."""

    name: str
    has_mm2s: bool
    has_s2mm: bool
    mm2s_tdata_bits: int | None  # stream width towards the accelerator
    s2mm_tdata_bits: int | None  # stream width from the accelerator
    mm2s_mem_bits: int  # memory-map data width (address alignment without DRE)
    s2mm_mem_bits: int
    max_transfer_bytes: int  # 2**c_sg_length_width - 1
    scatter_gather: bool
    micro: bool


def read_hwh(path: str | Path) -> dict[str, HwhModule]:
    """All IP instances of a ``.hwh`` file by name (``FULLNAME`` without the leading ``/``,
    which is how PYNQ names hierarchical IP)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"hardware hand-off file {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise HwhError(f"{path}: not a valid .hwh (XML) file: {e}") from e
    mods: dict[str, HwhModule] = {}
    for m in root.iter("MODULE"):
        inst = m.get("INSTANCE")
        if not inst:
            continue
        params = {}
        for p in m.iter("PARAMETER"):
            name = p.get("NAME")
            if name is not None:
                params.setdefault(name.lower(), p.get("VALUE", ""))
        full = (m.get("FULLNAME") or inst).lstrip("/")
        mods[full] = HwhModule(inst, full, m.get("MODTYPE", ""), m.get("VLNV", ""), params)
    return mods


def dma_config(path: str | Path, name: str) -> DmaConfig:
    """The AXI DMA instance ``name`` of a ``.hwh`` file (the layout's ``ip_names.dma``);
    :class:`HwhError` when absent."""
    mods = read_hwh(path)
    mod = mods.get(name)
    if mod is None:
        mod = next((m for m in mods.values() if m.instance == name), None)
    if mod is None:
        dmas = sorted(k for k, m in mods.items() if m.modtype == "axi_dma")
        raise HwhError(f"{Path(path).name}: no DMA instance named {name!r} "
                       f"(AXI DMAs in the design: {dmas or 'none'})")
    if mod.modtype and mod.modtype != "axi_dma":
        raise HwhError(f"{Path(path).name}: {name!r} is a {mod.modtype}, not an axi_dma")
    sg_width = mod.int_param("c_sg_length_width", MAX_SG_LENGTH_WIDTH)
    return DmaConfig(
        name=name,
        has_mm2s=bool(mod.int_param("c_include_mm2s", 1)),
        has_s2mm=bool(mod.int_param("c_include_s2mm", 1)),
        mm2s_tdata_bits=mod.int_param("c_m_axis_mm2s_tdata_width"),
        s2mm_tdata_bits=mod.int_param("c_s_axis_s2mm_tdata_width"),
        mm2s_mem_bits=mod.int_param("c_m_axi_mm2s_data_width", 32) or 32,
        s2mm_mem_bits=mod.int_param("c_m_axi_s2mm_data_width", 32) or 32,
        max_transfer_bytes=(1 << int(sg_width or MAX_SG_LENGTH_WIDTH)) - 1,
        scatter_gather=bool(mod.int_param("c_include_sg", 0)),
        micro=bool(mod.int_param("c_micro_dma", 0)),
    )
