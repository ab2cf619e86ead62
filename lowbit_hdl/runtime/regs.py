"""The register map of the accelerator's AXI4-Lite control block: names, offsets, access and
bit meanings, in one place.

The hardware (:class:`lowbit_hdl.hw.axi.AXI4LiteRegisters`) builds its register file from
:data:`CONTROL_REGISTERS` and the runtime writes and reads the same offsets, so this module
imports the standard library only. Registers are 32 bits wide and 4 bytes apart, in the
order of the list (``offset = 4 · index``).

=====  ================  ======  =====================================================
 off    name              access  meaning
=====  ================  ======  =====================================================
 0x00   CTRL              w1s     bit 0 START (one-cycle pulse), bit 1 SOFT_RESET (pulse)
 0x04   STATUS            ro      bit 0 BUSY, bit 1 DONE (sticky until the next START),
                                  bit 2 ERROR (a DMA/AXI error; code in ERROR)
 0x08   ERROR             ro      error code (:data:`ERROR_CODES`), 0 = none
 0x0C   WEIGHTS_BASE_LO   rw      DDR byte address of the weight image, bits 31:0
 0x10   WEIGHTS_BASE_HI   rw      bits 63:32 (0 on the 32-bit Zynq-7000)
 0x14   FRAMES            rw      frames to run after START
 0x18   CYCLES            ro      clock cycles from START to DONE (performance counter)
 0x1C   STALL_CYCLES      ro      cycles in which a weight stream starved the pipeline
 0x20   BYTES_READ        ro      bytes read from DDR since START
 0x24   ID                ro      :data:`ID_VALUE` (design family and map version)
=====  ================  ======  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Register", "ACCESS", "CONTROL_REGISTERS", "OFFSETS", "offset", "register",
    "CTRL_START", "CTRL_SOFT_RESET", "STATUS_BUSY", "STATUS_DONE", "STATUS_ERROR",
    "ERROR_NONE", "ERROR_AXI_SLVERR", "ERROR_AXI_DECERR", "ERROR_ENGINE_DESCRIPTOR",
    "ERROR_ENGINE_TABLE", "ERROR_ENGINE_DATAPATH", "ERROR_CODES", "ID_VALUE",
    "REGISTER_BYTES",
]

#: access kinds: ``rw`` read/write value, ``ro`` read-only (driven by the hardware),
#: ``w1s`` write-one pulses (the written bits are high for one cycle; reads return 0)
ACCESS = ("rw", "ro", "w1s")
#: bytes between register offsets
REGISTER_BYTES = 4


@dataclass(frozen=True)
class Register:
    """One 32-bit register of an AXI4-Lite register file.

    Parameters
    ----------
    name : str
        Upper-case identifier (the hardware port is its lower-case form).
    access : str
        One of :data:`ACCESS`.
    reset : int
        Value after reset (``rw`` only; ``ro`` registers show their input, ``w1s`` read 0).
    doc : str
        One line for the documentation.
    """

    name: str
    access: str
    reset: int = 0
    doc: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.access, str):
            raise TypeError(f"Register({self.name!r}, {self.access!r}): name and access "
                            "must be str")
        if not isinstance(self.reset, int) or isinstance(self.reset, bool):
            raise TypeError(f"Register {self.name}: reset={self.reset!r} must be an int")
        if not self.name.isidentifier() or not self.name.isupper():
            raise ValueError(f"Register name {self.name!r} must be an upper-case identifier")
        if self.access not in ACCESS:
            raise ValueError(f"Register {self.name}: access={self.access!r} must be one of "
                             f"{ACCESS}")
        if not 0 <= self.reset < 1 << 32:
            raise ValueError(f"Register {self.name}: reset={self.reset} must fit in 32 bits")
        if self.reset and self.access != "rw":
            raise ValueError(f"Register {self.name}: only rw registers have a reset value")


# CTRL bits (w1s)
CTRL_START = 1 << 0
CTRL_SOFT_RESET = 1 << 1
# STATUS bits (ro)
STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1
STATUS_ERROR = 1 << 2
# ERROR codes: the AXI response of the first failed read (RRESP), then the engine's
ERROR_NONE = 0
ERROR_AXI_SLVERR = 2
ERROR_AXI_DECERR = 3
#: the engine's sequencer rejected a descriptor (lowbit_hdl.runtime.engine.check_descriptor)
ERROR_ENGINE_DESCRIPTOR = 4
#: the engine's descriptor table is inconsistent (0 layers, ``last`` missing or early)
ERROR_ENGINE_TABLE = 5
#: the engine's datapath rejected a descriptor: this plus its own code (1–15,
#: lowbit_hdl.runtime.engine.DATAPATH_ERRORS)
ERROR_ENGINE_DATAPATH = 16
ERROR_CODES = {ERROR_NONE: "none", ERROR_AXI_SLVERR: "AXI slave error (SLVERR) on a DDR read",
               ERROR_AXI_DECERR: "AXI decode error (DECERR) on a DDR read",
               ERROR_ENGINE_DESCRIPTOR: "engine: a layer descriptor failed the sequencer's "
                                        "checks (bad image)",
               ERROR_ENGINE_TABLE: "engine: the descriptor table's layer count and last "
                                   "flags disagree (bad image)",
               **{ERROR_ENGINE_DATAPATH + k: f"engine: the datapath rejected a descriptor "
                  f"(datapath code {k}, runtime.engine.DATAPATH_ERRORS)" for k in range(1, 16)}}
#: value of the ID register: "LB" (lowbit) in the upper half, map version 1 in the lower
ID_VALUE = 0x4C42_0001

CONTROL_REGISTERS: tuple[Register, ...] = (
    Register("CTRL", "w1s", doc="bit 0 START, bit 1 SOFT_RESET (pulses)"),
    Register("STATUS", "ro", doc="bit 0 BUSY, bit 1 DONE (sticky until START), bit 2 ERROR"),
    Register("ERROR", "ro", doc="error code, 0 = none (ERROR_CODES)"),
    Register("WEIGHTS_BASE_LO", "rw", doc="DDR byte address of the weight image, bits 31:0"),
    Register("WEIGHTS_BASE_HI", "rw", doc="DDR byte address of the weight image, bits 63:32"),
    Register("FRAMES", "rw", reset=1, doc="frames to run after START"),
    Register("CYCLES", "ro", doc="cycles from START to DONE"),
    Register("STALL_CYCLES", "ro", doc="cycles a DDR weight stream starved the pipeline"),
    Register("BYTES_READ", "ro", doc="bytes read from DDR since START"),
    Register("ID", "ro", doc=f"0x{ID_VALUE:08X}: design family and register-map version"),
)

#: byte offset of every control register
OFFSETS: dict[str, int] = {r.name: REGISTER_BYTES * i for i, r in enumerate(CONTROL_REGISTERS)}


def offset(name: str) -> int:
    """Byte offset of control register ``name``; ``KeyError`` naming the known ones."""
    try:
        return OFFSETS[name]
    except KeyError:
        raise KeyError(f"no control register {name!r}; known: {', '.join(OFFSETS)}") from None


def register(name: str) -> Register:
    """The :class:`Register` called ``name`` in :data:`CONTROL_REGISTERS`."""
    return CONTROL_REGISTERS[offset(name) // REGISTER_BYTES]
