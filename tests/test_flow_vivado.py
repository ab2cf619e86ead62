# amaranth: UnusedElaboratable=no
"""Vivado flow: the wrapper's ports against the generated top level, and the Tcl run under
tclsh with every Vivado command stubbed by a recorder (lowbit_hdl.flow.tclcheck)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import tiny_fc_net

from lowbit_hdl.flow.build import build, lint_verilog
from lowbit_hdl.flow.plan import IP_NAMES
from lowbit_hdl.flow.tclcheck import _parse_tcl_list, dry_run, stub_prelude, tclsh_available
from lowbit_hdl.flow.top import TOP_NAME
from lowbit_hdl.flow.vivado import (
    IP_VLNV,
    TCL_VIVADO_COMMANDS,
    VIVADO_FILES,
    WRAPPER_NAME,
    VivadoConfig,
    VivadoWrapper,
    config_tcl,
    tcl_list,
    tcl_word,
    vivado_file,
    wrapper_verilog,
)

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.skipif(not tclsh_available(), reason="tclsh not installed")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("viv") / "tiny_fc"
    res = build(tiny_fc_net(), out, lint=False, check_tcl=False, progress=None)
    return res


def _ports(verilog: str, module: str) -> dict[str, tuple[str, int]]:
    """Port name → (direction, width) of ``module`` in ``verilog`` (ANSI or non-ANSI)."""
    body = verilog[verilog.index(f"module {module}"):]
    body = body[:body.index("endmodule")]
    out = {}
    for m in re.finditer(r"\b(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s*)?"
                         r"(\\?[\w$]+)", body):
        out[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return out


def test_wrapper_matches_top(built):
    out = built.out_dir
    top = (out / "rtl" / f"{TOP_NAME}.v").read_text()
    wrap = (out / "rtl" / f"{WRAPPER_NAME}.v").read_text()
    tp = _ports(top, TOP_NAME)
    lin, lout = built.plan.input, built.plan.output
    assert tp == {
        "clk": ("input", 1), "rst": ("input", 1),
        "s_axis__tdata": ("input", lin.tdata_bits), "s_axis__tvalid": ("input", 1),
        "s_axis__tready": ("output", 1), "s_axis__tlast": ("input", 1),
        "m_axis__tdata": ("output", lout.tdata_bits), "m_axis__tvalid": ("output", 1),
        "m_axis__tready": ("input", 1), "m_axis__tlast": ("output", 1),
    }
    wp = _ports(wrap, WRAPPER_NAME)
    assert wp == {
        "ap_clk": ("input", 1), "ap_rst_n": ("input", 1),
        "s_axis_tdata": ("input", lin.tdata_bits), "s_axis_tvalid": ("input", 1),
        "s_axis_tready": ("output", 1), "s_axis_tlast": ("input", 1),
        "m_axis_tdata": ("output", lout.tdata_bits), "m_axis_tkeep": ("output",
                                                                      lout.tdata_bits // 8),
        "m_axis_tvalid": ("output", 1), "m_axis_tready": ("input", 1),
        "m_axis_tlast": ("output", 1),
    }
    # every core port is connected, to the wrapper port of the same AXI signal
    conns = dict(re.findall(r"\.(\w+)\(([^)]*)\)", wrap))
    assert set(conns) == set(tp)
    for p in tp:
        if p.startswith(("s_axis__", "m_axis__")):
            assert conns[p] == p.replace("__", "_")
    # the top's active-high reset is the inverted ap_rst_n (through a wire named rst)
    assert conns["clk"] == "ap_clk" and conns["rst"] == "rst"
    assert re.search(r"assign\s+rst\s*=\s*~\s*ap_rst_n\s*;", wrap)
    assert re.search(r"assign\s+m_axis_tkeep\s*=\s*\d+'h([0-9a-f]+)\s*;", wrap).group(1) == \
        f"{(1 << lout.tdata_bits // 8) - 1:x}"
    # Vivado interface inference: every AXI port carries X_INTERFACE_INFO for its bus
    for p in wp:
        if p.startswith(("s_axis_", "m_axis_")):
            bus, sig = p[:6], p[7:].upper()
            assert f'"xilinx.com:interface:axis:1.0 {bus} {sig}" *)' in wrap
    assert "ASSOCIATED_BUSIF s_axis:m_axis" in wrap and "POLARITY ACTIVE_LOW" in wrap


def test_wrapper_lints_clean_without_waivers(tmp_path, built):
    """The wrapper passes -Wall on its own (the top as a black box)."""
    stub = tmp_path / f"{TOP_NAME}.v"
    lin, lout = built.plan.input.tdata_bits, built.plan.output.tdata_bits
    stub.write_text(
        "/* verilator lint_off UNUSEDSIGNAL */\n"
        f"module {TOP_NAME}(input wire clk, input wire rst, input wire [{lin - 1}:0] "
        "s_axis__tdata, input wire s_axis__tvalid, output wire s_axis__tready, input wire "
        f"s_axis__tlast, output wire [{lout - 1}:0] m_axis__tdata, output wire m_axis__tvalid,"
        " input wire m_axis__tready, output wire m_axis__tlast);\n"
        f"assign s_axis__tready = 1'b1; assign m_axis__tdata = {lout}'d0;\n"
        "assign m_axis__tvalid = 1'b0; assign m_axis__tlast = 1'b0;\nendmodule\n")
    wrap = tmp_path / f"{WRAPPER_NAME}.v"
    wrap.write_text(wrapper_verilog(lin, lout, "t"))
    clean, log = lint_verilog([stub, wrap], WRAPPER_NAME)
    if log.startswith("not run"):
        pytest.skip(log)
    assert clean, log


def _cell_names(run) -> dict[str, list[str]]:
    cells = {}
    for args in run.named("create_bd_cell"):
        cells[args[-1]] = args[:-1]
    return cells


def test_tcl_dry_run(built):
    out = built.out_dir
    tcl = out / "vivado" / "build.tcl"
    run = dry_run(tcl)
    # only known Vivado commands were called, and the main steps in order
    names = [c[0] for c in run.calls]
    assert set(names) <= set(TCL_VIVADO_COMMANDS)
    order = ["create_project", "create_bd_design", "assign_bd_address", "validate_bd_design",
             "make_wrapper", "launch_runs", "wait_on_run", "launch_runs", "wait_on_run",
             "report_utilization"]
    pos = 0
    for n in names:
        if pos < len(order) and n == order[pos]:
            pos += 1
    assert pos == len(order), names
    proj = run.named("create_project")[0]
    assert proj[0] == "tiny_fc_pynq" and proj[proj.index("-part") + 1] == "xc7z020clg400-1"
    # the RTL it adds is exactly the build's Verilog
    added = run.named("add_files")[0][-1].split()
    assert sorted(p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in added) == [
        f"rtl/{WRAPPER_NAME}.v", f"rtl/{TOP_NAME}.v"]
    # IP cells: names the runtime looks up, versions for Vivado 2022.2
    cells = _cell_names(run)
    assert set(cells) == {IP_NAMES["ps"], IP_NAMES["dma"], IP_NAMES["accelerator"],
                          "rst_ps7_0", "ps7_0_axi_periph", "axi_smc"}
    assert cells[IP_NAMES["dma"]] == ["-type", "ip", "-vlnv", IP_VLNV["axi_dma"]]
    assert cells[IP_NAMES["accelerator"]] == ["-type", "module", "-reference", WRAPPER_NAME]
    # DMA configuration: simple mode, stream widths = the accelerator's tdata widths
    props = {}
    for args in run.named("set_property"):
        if args[0] == "-dict":
            kv = _parse_tcl_list(args[1])
            props.setdefault(args[2], {}).update(dict(zip(kv[::2], kv[1::2], strict=True)))
    dma = props[IP_NAMES["dma"]]
    assert dma["CONFIG.c_include_sg"] == "0"
    assert int(dma["CONFIG.c_m_axis_mm2s_tdata_width"]) == built.plan.input.tdata_bits
    assert int(dma["CONFIG.c_s_axis_s2mm_tdata_width"]) == built.plan.output.tdata_bits
    assert int(dma["CONFIG.c_m_axi_mm2s_data_width"]) >= built.plan.input.tdata_bits
    assert dma["CONFIG.c_sg_length_width"] == "26"
    ps = props[IP_NAMES["ps"]]
    assert ps["CONFIG.PCW_USE_S_AXI_HP0"] == "1" and ps["CONFIG.PCW_USE_M_AXI_GP0"] == "1"
    assert float(ps["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"]) == built.plan.clock_mhz
    assert ps["CONFIG.PCW_UIPARAM_DDR_PARTNO"] == "MT41K256M16 RE-125"  # no board files
    # streams: MM2S → accelerator → S2MM; the accelerator's pins exist in the wrapper
    intf = {(a[0], b[0]) for a, b in (
        (c[0].split(), c[1].split()) for c in run.named("connect_bd_intf_net"))}
    acc = IP_NAMES["accelerator"]
    assert (f"{IP_NAMES['dma']}/M_AXIS_MM2S", f"{acc}/s_axis") in intf
    assert (f"{acc}/m_axis", f"{IP_NAMES['dma']}/S_AXIS_S2MM") in intf
    assert ("axi_smc/M00_AXI", f"{IP_NAMES['ps']}/S_AXI_HP0") in intf
    assert (f"{IP_NAMES['ps']}/M_AXI_GP0", "ps7_0_axi_periph/S00_AXI") in intf
    wrap = (out / "rtl" / f"{WRAPPER_NAME}.v").read_text()
    used = {p.split("/", 1)[1] for c in run.named("get_bd_pins") + run.named("get_bd_intf_pins")
            for p in c if p.startswith(acc + "/")}
    assert used == {"ap_clk", "ap_rst_n", "s_axis", "m_axis"}
    for p in ("ap_clk", "ap_rst_n"):
        assert re.search(rf"input\s+(?:wire\s+)?{p}\b", wrap)
    # one clock net reaches every clock pin, the accelerator's included
    clk_net = [c for c in run.named("connect_bd_net") if f"{IP_NAMES['ps']}/FCLK_CLK0" in c[0]]
    assert len(clk_net) == 1 and f"{acc}/ap_clk" in clk_net[0]
    rst_net = [c for c in run.named("connect_bd_net") if "rst_ps7_0/peripheral_aresetn" in c[0]]
    assert f"{acc}/ap_rst_n" in rst_net[0] and f"{IP_NAMES['dma']}/axi_resetn" in rst_net[0]
    # bitstream run and the PYNQ pair copied next to layout.json
    assert ["impl_1", "-to_step", "write_bitstream", "-jobs", "4"] in run.named("launch_runs")
    assert run.produced == ["tiny_fc.bit", "tiny_fc.hwh"]


def test_tcl_with_board_files(built):
    run = dry_run(built.out_dir / "vivado" / "build.tcl",
                  board_parts="tul.com.tw:pynq-z2:part0:1.0")
    assert ["board_part", "tul.com.tw:pynq-z2:part0:1.0", "project"] in run.named(
        "set_property")
    auto = run.named("apply_bd_automation")[0]
    assert "apply_board_preset 1" in auto[auto.index("-config") + 1]
    assert not any("PCW_UIPARAM_DDR_PARTNO" in " ".join(a) for a in run.named("set_property"))


def test_tcl_fails_without_rtl(built, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(built.out_dir / "vivado", out / "vivado")
    (out / "rtl").mkdir()
    with pytest.raises(RuntimeError, match="missing RTL file"):
        dry_run(out / "vivado" / "build.tcl")


def test_unknown_command_is_an_error(tmp_path):
    (tmp_path / "rtl").mkdir()
    (tmp_path / "vivado").mkdir()
    (tmp_path / "vivado" / "build.tcl").write_text("create_project a b\ncreate_bd_cel x\n")
    with pytest.raises(RuntimeError, match="invalid command name \"create_bd_cel\""):
        dry_run(tmp_path / "vivado" / "build.tcl")
    assert "proc unknown" in stub_prelude()


def test_tcl_parameters():
    cfg = VivadoConfig("n", clock_mhz=142.5, in_width=64, out_width=8, jobs=2)
    tcl = config_tcl(cfg, ["rtl/a.v"])
    assert "set fclk_mhz 142.5" in tcl and "set jobs 2" in tcl
    assert "set s2mm_mm_width 32" in tcl  # ≥ 32 bits memory-mapped side
    assert "set mm2s_mm_width 64" in tcl
    assert "set tested_version 2022.2" in tcl
    # only comments and `set name value` lines: the program is the static build.tcl
    for line in tcl.splitlines():
        assert line.startswith(("# ", "set ")), line


def test_vivado_files_are_static(built):
    """build.tcl and run.sh are the package's files; config.tcl is the build's settings."""
    viv = built.out_dir / "vivado"
    assert sorted(p.name for p in viv.iterdir()) == sorted(VIVADO_FILES)
    for name in ("build.tcl", "run.sh"):
        assert (viv / name).read_bytes() == vivado_file(name)
    assert (viv / "run.sh").stat().st_mode & 0o111
    assert "source [file join $script_dir config.tcl]" in vivado_file("build.tcl").decode()
    cfg = VivadoConfig.from_plan(built.plan)
    assert (viv / "config.tcl").read_text() == config_tcl(
        cfg, [f"rtl/{TOP_NAME}.v", f"rtl/{WRAPPER_NAME}.v"])
    with pytest.raises(ValueError, match="no flow file"):
        vivado_file("nope.tcl")


def _normalized(run) -> dict:
    def n(s):
        return s.replace(run.out_dir, "<out>")
    return {"produced": run.produced, "stdout": n(run.stdout),
            "calls": [[n(a) for a in c] for c in run.calls]}


def test_tcl_calls_unchanged(built):
    """The recorded Vivado calls, output and produced files equal those of the script as it
    was before it became a static build.tcl + generated config.tcl (captured from that script
    for this network, paths under the output folder as <out>)."""
    expected = json.loads((DATA / "tiny_fc_vivado_calls.json").read_text())
    tcl = built.out_dir / "vivado" / "build.tcl"
    assert _normalized(dry_run(tcl)) == expected["no_board_files"]
    assert _normalized(dry_run(tcl, board_parts="tul.com.tw:pynq-z2:part0:1.0")) == \
        expected["board_files"]


@pytest.mark.parametrize("value", [
    "plain", "xc7z020clg400-1", "tul.com.tw:pynq-z2:part0:*", "", "two words", "a{b", "}",
    "x\\", "$env(HOME)", "[exit 1]", "semi;colon", 'quote"d', "new\nline\ttab",
    "back\\slash {brace}", "ünï cødé", "#hash", "100%",
])
def test_tcl_word_reads_back(tmp_path, value):
    words = [value, "second"]
    script = tmp_path / "q.tcl"
    script.write_text(f"set v {tcl_word(value)}\nset l {tcl_list(words)}\n"
                      "fconfigure stdout -encoding utf-8 -translation lf\n"
                      "puts -nonewline [string length $v]:$v:[llength $l]:[lindex $l 0]\n",
                      encoding="utf-8")
    out = subprocess.run(["tclsh", str(script)], capture_output=True, check=True).stdout
    assert out.decode("utf-8") == f"{len(value)}:{value}:2:{value}"


def test_wrapper_arguments():
    with pytest.raises(TypeError, match="in_width"):
        VivadoWrapper(8.0, 8)
    with pytest.raises(ValueError, match="multiple of 8"):
        VivadoWrapper(8, 12)
    with pytest.raises(ValueError, match="positive"):
        VivadoWrapper(0, 8)
