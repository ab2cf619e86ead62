"""Vivado flow for the PYNQ-Z2 (xc7z020clg400-1): a thin Verilog wrapper with Vivado-style
ports, and the Tcl that builds a Zynq block design around it and produces the
``<net>.bit`` / ``<net>.hwh`` pair that ``pynq.Overlay`` loads.

Written for Vivado 2022.2 (IP versions in :data:`IP_VLNV`; see ``docs/build.md`` for other
versions). The block design, in the way FINN's and hls4ml's PYNQ shells are built:

* ``processing_system7_0``: PYNQ-Z2 preset when the board files are installed (else the
  board's DDR3/UART/clock settings are set by hand), M_AXI_GP0 for control, S_AXI_HP0
  (64 bit) for data, FCLK_CLK0 at the requested frequency, FCLK_RESET0_N;
* ``axi_dma_0``: simple mode (no scatter-gather), MM2S → accelerator → S2MM, stream widths
  equal to the accelerator's ``tdata`` widths, 26-bit length register;
* ``ps7_0_axi_periph`` (AXI interconnect) from GP0 to the DMA's AXI-Lite registers,
  ``axi_smc`` (SmartConnect) from the DMA's two memory masters to HP0;
* ``rst_ps7_0`` (proc_sys_reset) for synchronous active-low resets;
* ``lowbit_accel_0``: the accelerator, added as a module reference of the wrapper.

A hybrid design (weights of some layers in DDR) adds the accelerator's AXI4-Lite control
port ``s_axi_control`` on the GP0 interconnect (second master port, at
:data:`CONTROL_OFFSET`) and its AXI4 weight read masters ``m_axi_w<k>``: HP port ``h`` (the
DDR region's ``hp``) through the DMA's ``axi_smc`` for ``h = 0`` (HP0 is shared with the DMA)
and through a SmartConnect ``axi_smc_hp<h>`` of its own otherwise, each 64 bit
(``docs/build.md``, "Hybrid designs in Vivado").

It then runs synthesis, implementation and bitstream generation, writes utilisation and
timing reports to ``vivado/reports/``, and copies the bitstream and the hardware handoff to
``<out>/<net>.bit`` and ``<out>/<net>.hwh``.

Files: ``build.tcl`` (that script) and ``run.sh`` are static files shipped in
``lowbit_hdl/flow/vivado_files/`` and copied into each build's ``vivado/``; the build writes
``vivado/config.tcl`` next to them (:func:`config_tcl`: ``set name value`` lines with the
build's settings), which ``build.tcl`` sources. The wrapper is an Amaranth component
(:class:`VivadoWrapper`) written out with Amaranth's Verilog backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from amaranth.hdl import Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hw.axi import axi4_read_signature, axi4lite_signature
from ..runtime.ddr import WORD_BITS
from .plan import IP_NAMES, Plan
from .top import CONTROL_ADDR_BITS, TOP_NAME

__all__ = [
    "WRAPPER_NAME",
    "VIVADO_VERSION",
    "IP_VLNV",
    "VIVADO_FILES",
    "VivadoConfig",
    "VivadoWrapper",
    "wrapper_verilog",
    "tcl_word",
    "tcl_list",
    "config_tcl",
    "vivado_file",
    "write_vivado_files",
    "TCL_VIVADO_COMMANDS",
    "CONTROL_BUS",
    "WEIGHT_BUS_PREFIX",
    "CONTROL_SIGNALS",
    "WEIGHT_MASTER_SIGNALS",
    "CONTROL_OFFSET",
    "CONTROL_RANGE",
    "HP_PORTS",
    "weight_ports_of",
]

WRAPPER_NAME = "lowbit_accel"
VIVADO_VERSION = "2022.2"
#: IP versions shipped with Vivado 2022.2
IP_VLNV = {
    "processing_system7": "xilinx.com:ip:processing_system7:5.5",
    "axi_dma": "xilinx.com:ip:axi_dma:7.1",
    "axi_interconnect": "xilinx.com:ip:axi_interconnect:2.1",
    "smartconnect": "xilinx.com:ip:smartconnect:1.0",
    "proc_sys_reset": "xilinx.com:ip:proc_sys_reset:5.0",
}
PYNQ_Z2_BOARD = "tul.com.tw:pynq-z2:part0:*"
#: what a build's ``vivado/`` holds: the static script, its generated settings, the runner
VIVADO_FILES = ("build.tcl", "config.tcl", "run.sh")
#: package folder (next to this module) of the static files
_FILES_DIR = "vivado_files"
#: characters that need no quoting in a Tcl word (besides ASCII letters and digits)
_TCL_BARE = "_.:/*+-,=@%"

#: hybrid designs: the wrapper's AXI4-Lite control slave (the top's ``s_axil``) and the
#: prefix of its AXI4 weight read masters ``m_axi_w<k>`` (the top's ``m_axi<k>``)
CONTROL_BUS = "s_axi_control"
WEIGHT_BUS_PREFIX = "m_axi_w"
#: the control port's address window on M_AXI_GP0 (the first of the PL's GP0 range) and its
#: size (the top decodes CONTROL_ADDR_BITS address bits)
CONTROL_OFFSET = 0x43C0_0000
CONTROL_RANGE = 1 << CONTROL_ADDR_BITS
#: the Zynq-7000's S_AXI_HP ports
HP_PORTS = 4
#: slave ports of one SmartConnect, and the DMA's memory masters on HP0's (S00, S01)
SMARTCONNECT_MAX_SI = 16
DMA_MASTERS = 2


def _control_signature() -> wiring.Signature:
    """The top's AXI4-Lite control port (as seen from its master)."""
    return axi4lite_signature(CONTROL_ADDR_BITS, 32)


def _weight_signature() -> wiring.Signature:
    """One of the top's AXI4 weight read masters."""
    return axi4_read_signature(32, WORD_BITS)


#: the signals of ``s_axi_control_*`` and of each ``m_axi_w<k>_*``, in port order
CONTROL_SIGNALS = tuple(_control_signature().members)
WEIGHT_MASTER_SIGNALS = tuple(_weight_signature().members)

#: every Vivado (non-Tcl) command the generated script may call; the tests stub these
TCL_VIVADO_COMMANDS = (
    "version", "create_project", "get_board_parts", "set_property", "current_project",
    "add_files", "update_compile_order", "create_bd_design", "create_bd_cell",
    "apply_bd_automation", "get_bd_cells", "get_bd_pins", "get_bd_intf_pins",
    "connect_bd_intf_net", "connect_bd_net", "assign_bd_address", "validate_bd_design",
    "save_bd_design", "get_files", "generate_target", "make_wrapper", "current_fileset",
    "launch_runs", "wait_on_run", "get_runs", "get_property", "open_run",
    "report_utilization", "report_timing_summary", "regenerate_bd_layout", "close_project",
    "set_msg_config", "get_bd_addr_spaces", "get_bd_addr_segs",
)


@dataclass(frozen=True)
class VivadoConfig:
    """What the Vivado files are generated for (see :func:`config_tcl`).

    ``weight_hp`` is empty for a dataflow design; for a hybrid one it holds, for each AXI4
    weight read master ``m_axi_w<k>`` in order, the Zynq HP port it reads through (the DDR
    regions' ``hp``, 0 to :data:`HP_PORTS` − 1; HP0 is shared with the DMA), and
    ``hp_ports`` is the plan's HP port count (what the cost model divided the traffic over).
    """

    network: str
    part: str = "xc7z020clg400-1"
    clock_mhz: float = 100.0
    in_width: int = 8
    out_width: int = 8
    jobs: int = 4
    weight_hp: tuple[int, ...] = ()
    hp_ports: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_hp", tuple(self.weight_hp))
        for h in self.weight_hp:
            if not isinstance(h, int) or isinstance(h, bool):
                raise TypeError(f"weight_hp entries must be ints, not {type(h).__name__}")
        if not isinstance(self.hp_ports, int) or isinstance(self.hp_ports, bool):
            raise TypeError(f"hp_ports must be an int, not {type(self.hp_ports).__name__}")
        if not 1 <= self.hp_ports <= HP_PORTS:
            raise ValueError(f"hp_ports={self.hp_ports} must be 1 to {HP_PORTS} (Zynq-7000 "
                             "S_AXI_HP ports)")
        bad = [h for h in self.weight_hp if not 0 <= h < self.hp_ports]
        if bad:
            raise ValueError(f"weight_hp {list(self.weight_hp)}: HP ports {bad} are not in 0 "
                             f"to hp_ports − 1 = {self.hp_ports - 1}")
        for h in set(self.weight_hp):
            n = self.weight_hp.count(h) + (DMA_MASTERS if h == 0 else 0)
            if n > SMARTCONNECT_MAX_SI:
                raise ValueError(f"HP{h} would join {n} masters in one SmartConnect (at most "
                                 f"{SMARTCONNECT_MAX_SI}): spread the DDR layers over more "
                                 "HP ports")

    @classmethod
    def from_plan(cls, plan: Plan, part: str = "xc7z020clg400-1", jobs: int = 4
                  ) -> VivadoConfig:
        ddr = plan.uses_ddr
        return cls(plan.network.name, part, plan.clock_mhz, plan.input.tdata_bits,
                   plan.output.tdata_bits, jobs,
                   plan.ddr.master_hps if ddr else (),
                   plan.ddr.hp_ports if ddr else 1)

    @property
    def hybrid(self) -> bool:
        """Whether the design has weight read masters (and the AXI4-Lite control port)."""
        return bool(self.weight_hp)

    @property
    def project(self) -> str:
        return f"{self.network}_pynq"

    @property
    def bd(self) -> str:
        return f"{self.network}_bd"


class VivadoWrapper(wiring.Component):
    """The Vivado-facing wrapper ``lowbit_accel`` of the generated top level ``lowbit_top``.

    Ports ``ap_clk``, ``ap_rst_n`` (active low), ``s_axis_tdata/tvalid/tready/tlast`` and
    ``m_axis_tdata/tkeep/tvalid/tready/tlast``, each with the ``X_INTERFACE_INFO`` (and, for
    the clock and reset, ``X_INTERFACE_PARAMETER``) attribute from which IP integrator infers
    one clock, one active-low reset and the AXI-Stream interfaces ``s_axis`` and ``m_axis``.
    ``m_axis_tkeep`` is all ones; the top is an :class:`~amaranth.hdl.Instance` (its Verilog
    is a separate file).

    A hybrid design (``weight_ports > 0``) also has the AXI4-Lite slave ``s_axi_control_*``
    (the top's ``s_axil__*``, :data:`CONTROL_SIGNALS`) and one AXI4 read master
    ``m_axi_w<k>_*`` per DDR region ``k`` (the top's ``m_axi<k>__*``,
    :data:`WEIGHT_MASTER_SIGNALS`), tagged as ``aximm`` interfaces of those names and listed
    in the clock's ``ASSOCIATED_BUSIF``.

    Parameters
    ----------
    in_width, out_width : int
        ``tdata`` widths of the input and output streams (``out_width`` a multiple of 8).
    weight_ports : int
        AXI4 read masters of a hybrid design (``len(plan.ddr.regions)``); 0 for a dataflow
        design (no control port either).
    """

    def __init__(self, in_width: int, out_width: int, weight_ports: int = 0) -> None:
        for what, w in (("in_width", in_width), ("out_width", out_width),
                        ("weight_ports", weight_ports)):
            if not isinstance(w, int) or isinstance(w, bool):
                raise TypeError(f"{what} must be an int, not {type(w).__name__}")
            if what == "weight_ports" and w < 0:
                raise ValueError(f"weight_ports must be ≥ 0, not {w}")
            if what != "weight_ports" and w < 1:
                raise ValueError(f"{what} must be positive, not {w}")
        if out_width % 8:
            raise ValueError(f"out_width must be a multiple of 8 (tkeep), not {out_width}")
        self.weight_ports = weight_ports
        members = {
            "ap_clk": In(1), "ap_rst_n": In(1),
            "s_axis_tdata": In(in_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(out_width), "m_axis_tkeep": Out(out_width // 8),
            "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        }
        # (wrapper bus, top bus, its signature, the wrapper is the slave)
        self._mm_buses = []
        if weight_ports:
            self._mm_buses.append((CONTROL_BUS, "s_axil", _control_signature(), True))
            self._mm_buses += [(f"{WEIGHT_BUS_PREFIX}{k}", f"m_axi{k}", _weight_signature(),
                                False) for k in range(weight_ports)]
        for bus, _, sig, slave in self._mm_buses:
            for name, member in sig.members.items():
                # master-driven signals enter a slave and leave a master
                members[f"{bus}_{name}"] = \
                    (In if (member.flow == Out) == slave else Out)(member.shape)
        super().__init__(members)
        buses = ["s_axis", "m_axis"] + [b for b, *_ in self._mm_buses]
        self.ap_clk.attrs["X_INTERFACE_INFO"] = "xilinx.com:signal:clock:1.0 ap_clk CLK"
        self.ap_clk.attrs["X_INTERFACE_PARAMETER"] = \
            f"ASSOCIATED_BUSIF {':'.join(buses)}, ASSOCIATED_RESET ap_rst_n"
        self.ap_rst_n.attrs["X_INTERFACE_INFO"] = "xilinx.com:signal:reset:1.0 ap_rst_n RST"
        self.ap_rst_n.attrs["X_INTERFACE_PARAMETER"] = "POLARITY ACTIVE_LOW"
        for bus in ("s_axis", "m_axis"):
            for sig in ("tdata", "tkeep", "tvalid", "tready", "tlast"):
                port = getattr(self, f"{bus}_{sig}", None)
                if port is not None:
                    port.attrs["X_INTERFACE_INFO"] = \
                        f"xilinx.com:interface:axis:1.0 {bus} {sig.upper()}"
        for bus, _, sig, slave in self._mm_buses:
            for i, name in enumerate(sig.members):
                port = getattr(self, f"{bus}_{name}")
                port.attrs["X_INTERFACE_INFO"] = \
                    f"xilinx.com:interface:aximm:1.0 {bus} {name.upper()}"
                if i == 0:  # the interface's parameters go on its first port
                    port.attrs["X_INTERFACE_PARAMETER"] = (
                        f"XIL_INTERFACENAME {bus}, PROTOCOL AXI4LITE, READ_WRITE_MODE "
                        "READ_WRITE" if slave else
                        f"XIL_INTERFACENAME {bus}, PROTOCOL AXI4, READ_WRITE_MODE READ_ONLY")

    def elaborate(self, platform) -> Module:
        m = Module()
        rst = Signal(name="rst")  # the top's synchronous active-high reset
        m.d.comb += [rst.eq(~self.ap_rst_n), self.m_axis_tkeep.eq(-1)]
        streams = {}
        for bus in ("s_axis", "m_axis"):
            for sig in ("tdata", "tvalid", "tready", "tlast"):
                port = getattr(self, f"{bus}_{sig}")
                # the top's port is s_axis__tdata etc.; directions follow the wrapper's
                outward = (bus == "s_axis") == (sig != "tready")
                streams[f"{'i' if outward else 'o'}_{bus}__{sig}"] = port
        for bus, top_bus, sig, slave in self._mm_buses:
            for name, member in sig.members.items():
                into_top = (member.flow == Out) == slave
                streams[f"{'i' if into_top else 'o'}_{top_bus}__{name}"] = \
                    getattr(self, f"{bus}_{name}")
        m.submodules.core = Instance(TOP_NAME, i_clk=self.ap_clk, i_rst=rst, **streams)
        return m


def wrapper_verilog(in_width: int, out_width: int, network: str = "",
                    weight_ports: int = 0) -> str:
    """Verilog of :class:`VivadoWrapper` (module ``lowbit_accel``).

    Parameters
    ----------
    in_width, out_width : int
        ``tdata`` widths of the input and output streams.
    network : str
        Network name, for the comment on the first line.
    weight_ports : int
        AXI4 read masters of a hybrid design (:func:`weight_ports_of`), 0 for dataflow.

    Returns
    -------
    str
        The module, elaborated with Amaranth's Verilog backend.
    """
    from amaranth.back import verilog

    text = verilog.convert(VivadoWrapper(in_width, out_width, weight_ports), name=WRAPPER_NAME,
                           emit_src=False, strip_internal_attrs=True)
    what = f" for network {network}" if network else ""
    return f"// lowbit-hdl{what}: Vivado-facing wrapper of {TOP_NAME}.\n{text}"


def weight_ports_of(plan: Plan) -> int:
    """AXI4 read masters of ``plan``'s design: one per DDR region and one for an engine
    (0 for dataflow)."""
    return len(plan.ddr.master_hps) if plan.uses_ddr else 0


def _mm_width(stream_width: int) -> int:
    """AXI DMA memory-map width: at least 32 bits and at least the stream width."""
    return max(32, stream_width)


def tcl_word(value: object) -> str:
    """``value`` (its ``str``) as one Tcl word that reads back as exactly that string.

    Plain words (letters, digits and ``_ . : / * + - , = @ %``) stay bare; other text is
    braced when it holds no brace or backslash, else every character that is not a letter or
    digit is backslash-escaped (whitespace and control characters as ``\\uXXXX``).
    """
    s = str(value)
    if s and all(c.isascii() and (c.isalnum() or c in _TCL_BARE) for c in s):
        return s
    if not any(c in "{}\\" for c in s):
        return "{" + s + "}"
    out = []
    for c in s:
        if c.isalnum():
            out.append(c)
        elif c.isspace() or not c.isprintable():
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c)
        else:
            out.append("\\" + c)
    return "".join(out)


def tcl_list(items: list[str]) -> str:
    """``items`` as one Tcl word holding a proper Tcl list of them."""
    return tcl_word(" ".join(tcl_word(i) for i in items))


def _tcl_range(nbytes: int) -> str:
    """An address range as Vivado writes it (``4K``, ``64K``, ``1M``, …)."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if nbytes >= size and nbytes % size == 0:
            return f"{nbytes // size}{unit}"
    raise ValueError(f"address range {nbytes} is not a whole number of KiB")


def config_tcl(cfg: VivadoConfig, rtl_files: list[str]) -> str:
    """``vivado/config.tcl``: the build's settings, sourced by the static ``build.tcl``.

    Only ``set name value`` lines (values quoted with :func:`tcl_word`): network, project,
    block design, part, board pattern, clock, stream and memory-mapped widths, jobs, the
    wrapper module, the cell names (:data:`~lowbit_hdl.flow.plan.IP_NAMES`), the IP versions
    (:data:`IP_VLNV`), the Vivado version they are for and ``rtl_sources`` (``rtl_files``:
    paths relative to the build's output folder, the parent of ``vivado/``).

    A hybrid design (``cfg.weight_hp``) adds ``hybrid 1``, ``hp_ports``, ``weight_hp`` (the
    HP port of each weight master ``m_axi_w<k>``, in order), ``control_offset`` and
    ``control_range`` (:data:`CONTROL_OFFSET`, :data:`CONTROL_RANGE`); a dataflow design's
    file has none of these (``build.tcl`` then takes ``hybrid`` as 0).
    """
    settings: list[tuple[str, object]] = [
        ("net_name", cfg.network), ("proj_name", cfg.project), ("bd_name", cfg.bd),
        ("part", cfg.part), ("board_pattern", PYNQ_Z2_BOARD),
        ("fclk_mhz", f"{cfg.clock_mhz:g}"),
        ("in_width", cfg.in_width), ("out_width", cfg.out_width),
        ("mm2s_mm_width", _mm_width(cfg.in_width)), ("s2mm_mm_width", _mm_width(cfg.out_width)),
        ("jobs", cfg.jobs), ("accel_module", WRAPPER_NAME),
        ("rtl_sources", tcl_list(rtl_files)), ("tested_version", VIVADO_VERSION),
    ]
    if cfg.hybrid:
        settings += [
            ("hybrid", 1), ("hp_ports", cfg.hp_ports),
            ("weight_hp", tcl_list([str(h) for h in cfg.weight_hp])),
            ("control_offset", f"0x{CONTROL_OFFSET:08X}"),
            ("control_range", _tcl_range(CONTROL_RANGE)),
        ]
    settings += [(f"ip_name({k})", v) for k, v in sorted(IP_NAMES.items())]
    settings += [(f"ip_vlnv({k})", v) for k, v in sorted(IP_VLNV.items())]
    lines = [f"# Generated by lowbit-hdl for network {cfg.network}: the settings "
             f"{VIVADO_FILES[0]} reads."]
    for name, value in settings:
        quoted = name in ("rtl_sources", "weight_hp")  # already Tcl lists
        lines.append(f"set {name} {value if quoted else tcl_word(value)}")
    return "\n".join(lines) + "\n"


def vivado_file(name: str) -> bytes:
    """Contents of a static file of the flow (``build.tcl``, ``run.sh``,
    ``dry_run_prelude.tcl``), shipped in ``lowbit_hdl/flow/vivado_files/``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    res = resources.files(__package__).joinpath(_FILES_DIR, name)
    if not res.is_file():
        raise ValueError(f"no flow file {name!r} in {_FILES_DIR}/")
    return res.read_bytes()


def write_vivado_files(folder: str | Path, cfg: VivadoConfig, rtl_files: list[str]
                       ) -> list[Path]:
    """Write ``build.tcl`` and ``run.sh`` (static, ``run.sh`` executable) and the generated
    ``config.tcl`` (:func:`config_tcl`) into ``folder`` (the build's ``vivado/``).

    Returns
    -------
    list of Path
        The files written: ``build.tcl``, ``config.tcl``, ``run.sh``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in VIVADO_FILES:
        p = folder / name
        if name == "config.tcl":
            p.write_text(config_tcl(cfg, rtl_files))
        else:
            p.write_bytes(vivado_file(name))
        if name.endswith(".sh"):
            p.chmod(0o755)
        out.append(p)
    return out

