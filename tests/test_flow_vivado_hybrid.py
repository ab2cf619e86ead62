# amaranth: UnusedElaboratable=no
"""Vivado flow of hybrid designs (weights of some layers in DDR): the wrapper's AXI4-Lite
control slave and AXI4 weight read masters, and the block design's HP ports, SmartConnects,
GP0 control port and address map, checked on the tclsh dry run (lowbit_hdl.flow.tclcheck)."""

import re
from pathlib import Path

import pytest
from test_flow_vivado import _cell_names, _ports

from lowbit_hdl import BIPOLAR, FC, UINT, Network
from lowbit_hdl.flow.build import build, lint_verilog, lint_waiver_file
from lowbit_hdl.flow.plan import IP_NAMES
from lowbit_hdl.flow.tclcheck import _parse_tcl_list, dry_run, tclsh_available
from lowbit_hdl.flow.top import TOP_NAME
from lowbit_hdl.flow.vivado import (
    TCL_VIVADO_COMMANDS,
    WRAPPER_NAME,
    VivadoConfig,
    config_tcl,
    weight_ports_of,
    write_vivado_files,
)

pytestmark = pytest.mark.skipif(not tclsh_available(), reason="tclsh not installed")

PS, DMA, ACC = IP_NAMES["ps"], IP_NAMES["dma"], IP_NAMES["accelerator"]
#: AXI4-Lite slave s_axi_control: signal → (direction at the wrapper, width)
CONTROL_PORTS = {
    "awaddr": ("input", 12), "awprot": ("input", 3), "awvalid": ("input", 1),
    "awready": ("output", 1), "wdata": ("input", 32), "wstrb": ("input", 4),
    "wvalid": ("input", 1), "wready": ("output", 1), "bresp": ("output", 2),
    "bvalid": ("output", 1), "bready": ("input", 1), "araddr": ("input", 12),
    "arprot": ("input", 3), "arvalid": ("input", 1), "arready": ("output", 1),
    "rdata": ("output", 32), "rresp": ("output", 2), "rvalid": ("output", 1),
    "rready": ("input", 1),
}
#: AXI4 read master m_axi_w<k>
MASTER_PORTS = {
    "araddr": ("output", 32), "arlen": ("output", 8), "arsize": ("output", 3),
    "arburst": ("output", 2), "arcache": ("output", 4), "arprot": ("output", 3),
    "arvalid": ("output", 1), "arready": ("input", 1), "arid": ("output", 1),
    "rdata": ("input", 64), "rresp": ("input", 2), "rlast": ("input", 1),
    "rvalid": ("input", 1), "rready": ("output", 1), "rid": ("input", 1),
}


def hybrid_fc_net() -> Network:
    """Four FC layers; the first three have MH·MW a multiple of 64 (1-bit weights)."""
    return Network("hyb_fc", (1, 4, 4), [
        FC("fc0", 8, act=BIPOLAR, pe=2, simd=4),
        FC("fc1", 8, act=BIPOLAR, pe=2, simd=4),
        FC("fc2", 8, act=UINT(2), pe=2, simd=2),
        FC("fc3", 4, act=None, pe=2, simd=4),
    ], UINT(2)).randomize(1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """fc0, fc1, fc2 from DDR over 2 HP ports: masters 0, 1, 2 on HP 0, 1, 0."""
    out = tmp_path_factory.mktemp("vivh") / "hyb_fc"
    return build(hybrid_fc_net(), out, arch="hybrid", ddr_layers=["fc0", "fc1", "fc2"],
                 hp_ports=2, lint=False, check_tcl=False, deploy=False, progress=None)


def test_plan_is_hybrid(built):
    plan = built.plan
    assert plan.arch == "hybrid" and weight_ports_of(plan) == 3
    assert [(r.port, r.hp) for r in plan.ddr.regions] == [(0, 0), (1, 1), (2, 0)]
    cfg = VivadoConfig.from_plan(plan)
    assert cfg.hybrid and cfg.weight_hp == (0, 1, 0) and cfg.hp_ports == 2


def test_hybrid_wrapper_ports(built):
    out = built.out_dir
    wrap = (out / "rtl" / f"{WRAPPER_NAME}.v").read_text()
    top = (out / "rtl" / f"{TOP_NAME}.v").read_text()
    lin, lout = built.plan.input.tdata_bits, built.plan.output.tdata_bits
    expected = {
        "ap_clk": ("input", 1), "ap_rst_n": ("input", 1),
        "s_axis_tdata": ("input", lin), "s_axis_tvalid": ("input", 1),
        "s_axis_tready": ("output", 1), "s_axis_tlast": ("input", 1),
        "m_axis_tdata": ("output", lout), "m_axis_tkeep": ("output", lout // 8),
        "m_axis_tvalid": ("output", 1), "m_axis_tready": ("input", 1),
        "m_axis_tlast": ("output", 1),
    }
    expected |= {f"s_axi_control_{s}": v for s, v in CONTROL_PORTS.items()}
    for k in range(3):
        expected |= {f"m_axi_w{k}_{s}": v for s, v in MASTER_PORTS.items()}
    assert _ports(wrap, WRAPPER_NAME) == expected
    # every port of the top is connected, to the wrapper port of the same signal
    tp = _ports(top, TOP_NAME)
    conns = dict(re.findall(r"\.(\w+)\(([^)]*)\)", wrap))
    assert set(conns) == set(tp)
    mm = 0
    for p, wp in conns.items():
        master = re.fullmatch(r"m_axi(\d+)__(\w+)", p)
        if p.startswith("s_axil__"):
            assert wp == "s_axi_control_" + p[8:]
        elif master:
            assert wp == "m_axi_w{}_{}".format(*master.groups())
        else:
            continue
        assert tp[p] == expected[wp]  # same direction and width at the top
        mm += 1
    assert mm == len(CONTROL_PORTS) + 3 * len(MASTER_PORTS)
    # interface inference: aximm tags on every port, parameters on each interface, and the
    # clock associated with all five interfaces
    for p in expected:
        m = re.fullmatch(r"(s_axi_control|m_axi_w\d)_(\w+)", p)
        if m:
            assert (f'(* X_INTERFACE_INFO = "xilinx.com:interface:aximm:1.0 {m.group(1)} '
                    f'{m.group(2).upper()}" *)') in wrap
    assert "XIL_INTERFACENAME s_axi_control, PROTOCOL AXI4LITE" in wrap
    for k in range(3):
        assert f"XIL_INTERFACENAME m_axi_w{k}, PROTOCOL AXI4, READ_WRITE_MODE READ_ONLY" in wrap
    assert ("ASSOCIATED_BUSIF s_axis:m_axis:s_axi_control:m_axi_w0:m_axi_w1:m_axi_w2, "
            "ASSOCIATED_RESET ap_rst_n") in wrap


def test_hybrid_wrapper_lints_clean(built, tmp_path):
    """The wrapper with the real hybrid top: -Wall, waivers only for the generated top."""
    rtl = built.out_dir / "rtl"
    vlt = tmp_path / "w.vlt"
    vlt.write_text(lint_waiver_file([f"{TOP_NAME}.v"]))
    clean, log = lint_verilog([rtl / f"{TOP_NAME}.v", rtl / f"{WRAPPER_NAME}.v"],
                              WRAPPER_NAME, vlt)
    if log.startswith("not run"):
        pytest.skip(log)
    assert clean, log


def _props(run) -> dict[str, dict[str, str]]:
    props: dict[str, dict[str, str]] = {}
    for args in run.named("set_property"):
        if args[0] == "-dict":
            kv = _parse_tcl_list(args[1])
            props.setdefault(args[2], {}).update(dict(zip(kv[::2], kv[1::2], strict=True)))
    return props


def _intf(run) -> list[tuple[str, str]]:
    return [(c[0], c[1]) for c in run.named("connect_bd_intf_net")]


def check_hybrid_calls(run, weight_hp: list[int]) -> None:
    """The block-design calls a hybrid design with masters on ``weight_hp`` must record."""
    names = [c[0] for c in run.calls]
    assert set(names) <= set(TCL_VIVADO_COMMANDS)
    used = sorted(set(weight_hp) | {0})
    smc = {h: "axi_smc" if h == 0 else f"axi_smc_hp{h}" for h in used}
    # HP ports: exactly the used ones enabled, each 64 bit
    ps = _props(run)[PS]
    enabled = sorted(int(k[len("CONFIG.PCW_USE_S_AXI_HP"):]) for k, v in ps.items()
                     if k.startswith("CONFIG.PCW_USE_S_AXI_HP") and v == "1")
    assert enabled == used
    for h in used:
        assert ps[f"CONFIG.PCW_S_AXI_HP{h}_DATA_WIDTH"] == "64"
    # one SmartConnect per used HP port, its slave count = the masters it joins
    cells = _cell_names(run)
    assert {c for c in cells if c.startswith("axi_smc")} == set(smc.values())
    props = _props(run)
    intf = _intf(run)
    for h, cell in smc.items():
        assert cells[cell][:3] == ["-type", "ip", "-vlnv"] and "smartconnect" in cells[cell][3]
        slaves = sorted(b for a, b in intf if b.startswith(cell + "/S"))
        n_si = int(props[cell]["CONFIG.NUM_SI"])
        assert slaves == [f"{cell}/S{i:02d}_AXI" for i in range(n_si)]
        assert n_si == weight_hp.count(h) + (2 if h == 0 else 0)  # HP0: + the DMA's two
        assert props[cell]["CONFIG.NUM_MI"] == "1"
        assert (f"{cell}/M00_AXI", f"{PS}/S_AXI_HP{h}") in intf
    # one interface connection per weight master, to the SmartConnect of its HP port
    for k, h in enumerate(weight_hp):
        to = [b for a, b in intf if a == f"{ACC}/m_axi_w{k}"]
        assert len(to) == 1 and to[0].startswith(smc[h] + "/S"), (k, to)
    assert not [a for a, _ in intf if a == f"{ACC}/m_axi_w{len(weight_hp)}"]
    # the control port on GP0's interconnect, as its second master port
    assert props["ps7_0_axi_periph"]["CONFIG.NUM_MI"] == "2"
    assert ("ps7_0_axi_periph/M01_AXI", f"{ACC}/s_axi_control") in intf
    assert (f"{PS}/M_AXI_GP0", "ps7_0_axi_periph/S00_AXI") in intf
    # every new clock and reset pin on the one clock net / the peripheral reset
    nets = run.named("connect_bd_net")
    clk = [c for c in nets if c[0] == f"{PS}/FCLK_CLK0"]
    rst = [c for c in nets if c[0] == "rst_ps7_0/peripheral_aresetn"]
    assert len(clk) == 1 and len(rst) == 1
    need_clk = {f"{ACC}/ap_clk", "ps7_0_axi_periph/M01_ACLK"}
    need_rst = {f"{ACC}/ap_rst_n", "ps7_0_axi_periph/M01_ARESETN"}
    for h, cell in smc.items():
        need_clk |= {f"{cell}/aclk", f"{PS}/S_AXI_HP{h}_ACLK"}
        need_rst.add(f"{cell}/aresetn")
    assert need_clk <= set(clk[0]) and need_rst <= set(rst[0])
    assert len(set(clk[0])) == len(clk[0])
    # address map: the control registers at 0x43C0_0000 (4 KiB) in the PS's data space, each
    # master's space mapped onto its HP port's DDR segment, then everything else
    assigns = run.named("assign_bd_address")
    assert ["-offset", "0x43C00000", "-range", "4K", "-target_address_space",
            f"{PS}/Data", f"{ACC}/s_axi_control/reg0"] in assigns
    for k, h in enumerate(weight_hp):
        assert ["-target_address_space", f"{ACC}/m_axi_w{k}",
                f"{PS}/S_AXI_HP{h}/HP{h}_DDR_LOWOCM"] in assigns
    assert len(assigns) == 2 + len(weight_hp) and assigns[-1] == []
    # addresses are assigned before validation
    assert names.index("validate_bd_design") > max(
        i for i, n in enumerate(names) if n == "assign_bd_address")


def test_hybrid_tcl_dry_run(built):
    out = built.out_dir
    assert (out / "vivado" / "config.tcl").read_text() == config_tcl(
        VivadoConfig.from_plan(built.plan), [f"rtl/{TOP_NAME}.v", f"rtl/{WRAPPER_NAME}.v"])
    run = dry_run(out / "vivado" / "build.tcl")
    check_hybrid_calls(run, [0, 1, 0])
    # the pins and interfaces the script uses on the accelerator exist in the wrapper
    wp = _ports((out / "rtl" / f"{WRAPPER_NAME}.v").read_text(), WRAPPER_NAME)
    used = {p.split("/", 1)[1] for c in run.named("get_bd_pins") + run.named("get_bd_intf_pins")
            for p in c if p.startswith(ACC + "/")}
    assert used == {"ap_clk", "ap_rst_n", "s_axis", "m_axis", "s_axi_control", "m_axi_w0",
                    "m_axi_w1", "m_axi_w2"}
    for bus in used - {"ap_clk", "ap_rst_n"}:
        assert any(p.startswith(bus + "_") for p in wp), bus
    assert run.produced == ["hyb_fc.bit", "hyb_fc.hwh"]


def _dry_run_config(tmp_path: Path, cfg: VivadoConfig):
    (tmp_path / "rtl").mkdir()
    for f in ("a.v", "b.v"):
        (tmp_path / "rtl" / f).write_text("// stand-in\n")
    write_vivado_files(tmp_path / "vivado", cfg, ["rtl/a.v", "rtl/b.v"])
    return dry_run(tmp_path / "vivado" / "build.tcl")


@pytest.mark.parametrize("weight_hp,hp_ports", [
    ((0,), 1), ((0, 0, 0), 1), ((0, 1), 2), ((0, 1, 2, 3, 0, 1), 4), ((0, 3), 4),
])
def test_hp_port_mapping(tmp_path, weight_hp, hp_ports):
    """Masters on any HP ports: each HP port used gets a SmartConnect, enabled at 64 bit;
    unused HP ports stay off (HP2 with masters on HP 0 and 3 only)."""
    run = _dry_run_config(tmp_path, VivadoConfig("h", weight_hp=weight_hp, hp_ports=hp_ports))
    check_hybrid_calls(run, list(weight_hp))


def test_dataflow_config_has_no_hybrid_settings(tmp_path):
    cfg = VivadoConfig("d")
    assert not cfg.hybrid
    tcl = config_tcl(cfg, ["rtl/a.v"])
    for name in ("hybrid", "hp_ports", "weight_hp", "control_offset"):
        assert f"set {name} " not in tcl
    run = _dry_run_config(tmp_path, cfg)
    assert not run.named("get_bd_addr_segs") and run.named("assign_bd_address") == [[]]
    assert _props(run)["ps7_0_axi_periph"]["CONFIG.NUM_MI"] == "1"


def test_config_arguments():
    with pytest.raises(ValueError, match="hp_ports=5"):
        VivadoConfig("h", weight_hp=(0,), hp_ports=5)
    with pytest.raises(ValueError, match=r"HP ports \[2\]"):
        VivadoConfig("h", weight_hp=(0, 2), hp_ports=2)
    VivadoConfig("h", weight_hp=(0,) * 14, hp_ports=1)  # + the DMA's 2: 16, the most
    with pytest.raises(ValueError, match="HP0 would join 17 masters"):
        VivadoConfig("h", weight_hp=(0,) * 15, hp_ports=1)
    with pytest.raises(TypeError, match="weight_hp"):
        VivadoConfig("h", weight_hp=(0.0,), hp_ports=1)
    with pytest.raises(TypeError, match="hp_ports"):
        VivadoConfig("h", weight_hp=(0,), hp_ports="2")


def test_wrapper_weight_ports_argument():
    from lowbit_hdl.flow.vivado import VivadoWrapper

    with pytest.raises(ValueError, match="weight_ports"):
        VivadoWrapper(8, 8, -1)
    with pytest.raises(TypeError, match="weight_ports"):
        VivadoWrapper(8, 8, True)
