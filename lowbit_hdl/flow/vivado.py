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

from .plan import IP_NAMES, Plan
from .top import TOP_NAME

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

#: every Vivado (non-Tcl) command the generated script may call; the tests stub these
TCL_VIVADO_COMMANDS = (
    "version", "create_project", "get_board_parts", "set_property", "current_project",
    "add_files", "update_compile_order", "create_bd_design", "create_bd_cell",
    "apply_bd_automation", "get_bd_cells", "get_bd_pins", "get_bd_intf_pins",
    "connect_bd_intf_net", "connect_bd_net", "assign_bd_address", "validate_bd_design",
    "save_bd_design", "get_files", "generate_target", "make_wrapper", "current_fileset",
    "launch_runs", "wait_on_run", "get_runs", "get_property", "open_run",
    "report_utilization", "report_timing_summary", "regenerate_bd_layout", "close_project",
    "set_msg_config",
)


@dataclass(frozen=True)
class VivadoConfig:
    """What the Vivado files are generated for (see :func:`config_tcl`)."""

    network: str
    part: str = "xc7z020clg400-1"
    clock_mhz: float = 100.0
    in_width: int = 8
    out_width: int = 8
    jobs: int = 4

    @classmethod
    def from_plan(cls, plan: Plan, part: str = "xc7z020clg400-1", jobs: int = 4
                  ) -> VivadoConfig:
        return cls(plan.network.name, part, plan.clock_mhz, plan.input.tdata_bits,
                   plan.output.tdata_bits, jobs)

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

    Parameters
    ----------
    in_width, out_width : int
        ``tdata`` widths of the input and output streams (``out_width`` a multiple of 8).
    """

    def __init__(self, in_width: int, out_width: int) -> None:
        for what, w in (("in_width", in_width), ("out_width", out_width)):
            if not isinstance(w, int) or isinstance(w, bool):
                raise TypeError(f"{what} must be an int, not {type(w).__name__}")
            if w < 1:
                raise ValueError(f"{what} must be positive, not {w}")
        if out_width % 8:
            raise ValueError(f"out_width must be a multiple of 8 (tkeep), not {out_width}")
        super().__init__({
            "ap_clk": In(1), "ap_rst_n": In(1),
            "s_axis_tdata": In(in_width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(out_width), "m_axis_tkeep": Out(out_width // 8),
            "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })
        self.ap_clk.attrs["X_INTERFACE_INFO"] = "xilinx.com:signal:clock:1.0 ap_clk CLK"
        self.ap_clk.attrs["X_INTERFACE_PARAMETER"] = \
            "ASSOCIATED_BUSIF s_axis:m_axis, ASSOCIATED_RESET ap_rst_n"
        self.ap_rst_n.attrs["X_INTERFACE_INFO"] = "xilinx.com:signal:reset:1.0 ap_rst_n RST"
        self.ap_rst_n.attrs["X_INTERFACE_PARAMETER"] = "POLARITY ACTIVE_LOW"
        for bus in ("s_axis", "m_axis"):
            for sig in ("tdata", "tkeep", "tvalid", "tready", "tlast"):
                port = getattr(self, f"{bus}_{sig}", None)
                if port is not None:
                    port.attrs["X_INTERFACE_INFO"] = \
                        f"xilinx.com:interface:axis:1.0 {bus} {sig.upper()}"

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
        m.submodules.core = Instance(TOP_NAME, i_clk=self.ap_clk, i_rst=rst, **streams)
        return m


def wrapper_verilog(in_width: int, out_width: int, network: str = "") -> str:
    """Verilog of :class:`VivadoWrapper` (module ``lowbit_accel``).

    Parameters
    ----------
    in_width, out_width : int
        ``tdata`` widths of the input and output streams.
    network : str
        Network name, for the comment on the first line.

    Returns
    -------
    str
        The module, elaborated with Amaranth's Verilog backend.
    """
    from amaranth.back import verilog

    text = verilog.convert(VivadoWrapper(in_width, out_width), name=WRAPPER_NAME,
                           emit_src=False, strip_internal_attrs=True)
    what = f" for network {network}" if network else ""
    return f"// lowbit-hdl{what}: Vivado-facing wrapper of {TOP_NAME}.\n{text}"


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


def config_tcl(cfg: VivadoConfig, rtl_files: list[str]) -> str:
    """``vivado/config.tcl``: the build's settings, sourced by the static ``build.tcl``.

    Only ``set name value`` lines (values quoted with :func:`tcl_word`): network, project,
    block design, part, board pattern, clock, stream and memory-mapped widths, jobs, the
    wrapper module, the cell names (:data:`~lowbit_hdl.flow.plan.IP_NAMES`), the IP versions
    (:data:`IP_VLNV`), the Vivado version they are for and ``rtl_sources`` (``rtl_files``:
    paths relative to the build's output folder, the parent of ``vivado/``).
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
    settings += [(f"ip_name({k})", v) for k, v in sorted(IP_NAMES.items())]
    settings += [(f"ip_vlnv({k})", v) for k, v in sorted(IP_VLNV.items())]
    lines = [f"# Generated by lowbit-hdl for network {cfg.network}: the settings "
             f"{VIVADO_FILES[0]} reads."]
    for name, value in settings:
        lines.append(f"set {name} {value if name == 'rtl_sources' else tcl_word(value)}")
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

