# amaranth: UnusedElaboratable=no
"""AXI hardware: the AXI4 read master against cocotbext-axi's AxiRam (random addresses and
lengths across 4 KiB boundaries, random memory latency, AR/R pauses, consumer stalls, an
SLVERR region, exact cycles without stalls) and a sweep of small configurations in Amaranth's
simulator; the AXI4-Lite register file against cocotbext-axi's AxiLiteMaster (all registers,
byte strobes, unmapped addresses, AW/W in any order); the register map, the cost formulas and
the constructor checks."""

# (the line above: constructor checks build components that are never elaborated)
from __future__ import annotations

import random

import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator
from helpers import QUICK_SIM as SIM

from lowbit_hdl import cost
from lowbit_hdl.hw.axi import (
    AXI4LiteRegisters,
    AXI4ReadMaster,
    axi4_read_signature,
    axi4lite_signature,
)
from lowbit_hdl.runtime import regs
from sim.units import simulate

# Icarus builds these small benches in a second or two (Verilator: ~20 s cold, cached after)
needs_sim = pytest.mark.skipif(SIM is None, reason="no simulator (Verilator or Icarus)")

MEM = 1 << 16  # bytes of the memory model


def _random_commands(rng: random.Random, n: int, bpb: int, max_beats: int,
                     limit: int = MEM) -> list[list[int]]:
    """``n`` commands, a third of them straddling a 4 KiB boundary."""
    out = []
    for k in range(n):
        beats = rng.randint(1, max_beats)
        if k % 3 == 0:  # straddle a page boundary
            page = rng.randrange(1, limit // 4096)
            addr = page * 4096 - bpb * rng.randint(1, beats)
        else:
            addr = bpb * rng.randrange((limit - beats * bpb) // bpb)
        out.append([addr, beats])
    return out


def read_master_phases(bpb: int) -> list[dict]:
    rng = random.Random(13)
    quiet = {"stall_out": 0.0, "ar_pause": 0.0, "r_pause": 0.0, "delay": 0.0}
    return [
        # exact cycles: one long command across a 4 KiB boundary, then several back to back
        {**quiet, "commands": [[4096 - 5 * bpb, 300]], "check_cycles": True},
        {**quiet, "commands": [[64 * bpb, 40], [8192 - 3 * bpb, 50], [256, 2], [40000, 77]],
         "check_cycles": True},
        # random traffic under every kind of stall
        {"commands": _random_commands(rng, 40, bpb, 70), "stall_out": 0.3, "ar_pause": 0.3,
         "r_pause": 0.3, "delay": 0.05},
        # a slow consumer: the FIFO credits throttle the requests, RREADY stays high
        {"commands": _random_commands(rng, 12, bpb, 100), "stall_out": 0.85, "ar_pause": 0.1,
         "r_pause": 0.1, "delay": 0.0},
        # a region answering SLVERR: error set, every word still delivered
        {"commands": [[0x7000, 20], [0x8000 - 4 * bpb, 30], [0x9000, 10]], "stall_out": 0.2,
         "ar_pause": 0.2, "r_pause": 0.2, "delay": 0.02, "bad_from": 0x8000},
        # and after clear, clean reads again
        {"commands": _random_commands(rng, 10, bpb, 50), "stall_out": 0.2, "ar_pause": 0.2,
         "r_pause": 0.2, "delay": 0.02},
    ]


@needs_sim
def test_read_master_cosim():
    dut = AXI4ReadMaster(data_width=64, max_burst=16, max_outstanding=4)
    simulate(dut, "axi_read_master", "tb_axi",
             {"data_width": 64, "max_burst": 16, "max_outstanding": 4, "mem_size": MEM,
              "seed": 5, "latency": cost.AXI_READ_MASTER_LATENCY,
              "phases": read_master_phases(8)},
             SIM, testcase="read_master")


@needs_sim
def test_lite_registers_cosim():
    dut = AXI4LiteRegisters(regs.CONTROL_REGISTERS, addr_width=8)
    simulate(dut, "axil_regs", "tb_axi",
             {"registers": [[r.name, r.access, r.reset] for r in regs.CONTROL_REGISTERS],
              "seed": 3},
             SIM, testcase="lite_regs")


# -- Amaranth simulator: small configurations against a Python AXI memory ------------------

def _amaranth_read(dut: AXI4ReadMaster, commands: list[tuple[int, int]], seed: int,
                   stall: float, ar_pause: float, r_pause: float, latency: int,
                   max_cycles: int = 20000, resp=lambda a: 0, after=None
                   ) -> tuple[list[int], list[str], int]:
    """Run ``commands`` through ``dut`` against a memory whose byte ``a`` is ``a * 7 % 251``
    and whose beat at ``a`` answers ``RRESP = resp(a)``; returns the output words, bus rule
    violations and the cycle count. ``after(ctx)`` runs once every word is out."""
    rng = random.Random(seed)
    bpb = dut.data_width // 8
    axi = dut.m_axi
    words: list[int] = []
    errors: list[str] = []
    total = sum(b for _, b in commands)
    state = {"cycles": 0}

    def word_at(a: int) -> int:
        return int.from_bytes(bytes((x * 7) % 251 for x in range(a, a + bpb)), "little")

    async def bench(ctx):
        pending: list[list[int]] = []  # [ready_cycle, addr, beats_left]
        inflight = 0
        ci = 0
        cmd_valid = False
        r_beat = None
        ctx.set(axi.rresp, 0)
        while len(words) < total:
            t = state["cycles"]
            # command source (never stalls: commands queue up)
            if not cmd_valid and ci < len(commands):
                cmd_valid = True
                ctx.set(dut.cmd.valid, 1)
                ctx.set(Value.cast(dut.cmd.payload),
                        commands[ci][0] | commands[ci][1] << dut.addr_width)
            arready = rng.random() >= ar_pause
            ctx.set(axi.arready, arready)
            if r_beat is None and pending and pending[0][0] <= t and rng.random() >= r_pause:
                r_beat = pending[0]
                ctx.set(axi.rvalid, 1)
                ctx.set(axi.rdata, word_at(r_beat[1]))
                ctx.set(axi.rlast, r_beat[2] == 1)
                ctx.set(axi.rresp, resp(r_beat[1]))
            o_ready = rng.random() >= stall
            ctx.set(dut.o.ready, o_ready)
            (_, _, cmd_ready, arvalid, araddr, arlen, rready, o_valid, o_payload) = await \
                ctx.tick().sample(dut.cmd.ready, axi.arvalid, axi.araddr, axi.arlen,
                                  axi.rready, dut.o.valid, dut.o.payload)
            if cmd_valid and cmd_ready:
                ci += 1
                cmd_valid = False
                ctx.set(dut.cmd.valid, 0)
            if arvalid and arready:
                beats = arlen + 1
                if beats > dut.max_burst or araddr // 4096 != (araddr + beats * bpb - 1) // 4096:
                    errors.append(f"bad burst {araddr:#x}+{beats}")
                pending.append([t + latency, araddr, beats])
                inflight += 1
                if inflight > dut.max_outstanding:
                    errors.append(f"{inflight} bursts in flight")
            if r_beat is not None:
                if not rready:
                    errors.append(f"RREADY low under RVALID at cycle {t}")
                else:
                    r_beat[1] += bpb
                    r_beat[2] -= 1
                    if r_beat[2] == 0:
                        pending.pop(0)
                        inflight -= 1
                    r_beat = None
                    ctx.set(axi.rvalid, 0)
            if o_ready and o_valid:
                words.append(o_payload)
            state["cycles"] += 1
            if state["cycles"] > max_cycles:
                raise TimeoutError(f"{len(words)} of {total} words after {max_cycles} cycles")
        if after is not None:
            await after(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expected = [word_at(a + j * bpb) for a, b in commands for j in range(b)]
    assert words == expected
    return words, errors, state["cycles"]


@pytest.mark.parametrize("params", [
    {"data_width": 32, "max_burst": 4, "max_outstanding": 1},
    {"data_width": 128, "max_burst": 3, "max_outstanding": 2, "fifo_depth": 4},
    {"data_width": 64, "max_burst": 1, "max_outstanding": 3, "addr_width": 16},
], ids=["w32_b4_o1", "w128_b3_o2_f4", "w64_b1_o3"])
def test_read_master_configs(params):
    dut = AXI4ReadMaster(**params)
    bpb = dut.data_width // 8
    rng = random.Random(str(params))
    commands = [tuple(c) for c in _random_commands(rng, 8, bpb, 20, limit=1 << 15)]
    _, errors, _ = _amaranth_read(dut, commands, 1, stall=0.4, ar_pause=0.3, r_pause=0.3,
                                  latency=3)
    assert not errors, errors[:5]


def test_read_master_error_codes():
    """The first failing response's code is kept (SLVERR before DECERR here, then DECERR alone
    after ``clear``); every word still comes out; ``busy`` falls."""
    seen = {}

    def run(resp, key):
        dut = AXI4ReadMaster(data_width=32, max_burst=4, max_outstanding=2)

        async def after(ctx):
            for _ in range(8):
                await ctx.tick()
            seen[key] = (ctx.get(dut.error), ctx.get(dut.error_code), ctx.get(dut.busy),
                         ctx.get(dut.bytes_read))
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            await ctx.tick()
            seen[key + "_clear"] = (ctx.get(dut.error), ctx.get(dut.error_code),
                                    ctx.get(dut.bytes_read))

        _, errors, _ = _amaranth_read(dut, [(0x100, 12), (0x200, 9)], 2, 0.2, 0.2, 0.2, 2,
                                      resp=resp, after=after)
        assert not errors

    run(lambda a: 2 if 0x108 <= a < 0x110 else 3 if a >= 0x200 else 0, "mixed")
    run(lambda a: 3 if a == 0x204 else 1 if a == 0x100 else 0, "decerr")  # EXOKAY is fine
    assert seen["mixed"] == (1, 2, 0, 21 * 4)
    assert seen["decerr"] == (1, 3, 0, 21 * 4)
    assert seen["mixed_clear"] == seen["decerr_clear"] == (0, 0, 0)


def test_read_master_cycles_amaranth():
    """Without stalls a command of N beats takes N + L_mem + AXI_READ_MASTER_LATENCY cycles
    (here counted from the cycle the command is presented to the cycle of the last word)."""
    for n, lat in ((1, 1), (2, 3), (37, 5), (200, 12)):
        dut = AXI4ReadMaster(data_width=64, max_burst=16, max_outstanding=4, fifo_depth=64)
        _, errors, cycles = _amaranth_read(dut, [(4096 - 24, n)], 0, 0.0, 0.0, 0.0, lat)
        assert not errors
        # the memory model answers an address accepted at clock edge t with its first beat at
        # edge t + lat (L_mem = lat); the command is accepted at the first edge
        assert cycles == cost.axi_read_cycles(n, lat), (n, lat, cycles)


@pytest.mark.parametrize("lat, burst", [(11, 4), (12, 4), (30, 16)])
def test_read_master_full_rate_bounds(lat, burst):
    """``cost.axi_read_full_rate`` is exact: at its bounds on bursts in flight and FIFO depth
    the formula holds, one burst or one word less and the master is slower."""
    n = 320

    def cycles(outstanding: int, depth: int) -> int:
        dut = AXI4ReadMaster(64, 32, burst, outstanding, depth)
        _, errors, c = _amaranth_read(dut, [(0, n)], 0, 0.0, 0.0, 0.0, lat)
        assert not errors
        return c

    o_min = -(-(lat + burst + 1) // burst)
    d_min = lat + burst + 3
    assert cost.axi_read_full_rate(lat, burst, o_min, d_min)
    assert not cost.axi_read_full_rate(lat, burst, o_min - 1, d_min)
    assert not cost.axi_read_full_rate(lat, burst, o_min, d_min - 1)
    assert cycles(o_min, 512) == cost.axi_read_cycles(n, lat)
    assert cycles(o_min - 1, 512) > cost.axi_read_cycles(n, lat)
    assert cycles(64, d_min) == cost.axi_read_cycles(n, lat)
    assert cycles(64, d_min - 1) > cost.axi_read_cycles(n, lat)


# -- register map, cost formulas, checks -------------------------------------------------------

def test_control_register_map():
    names = [r.name for r in regs.CONTROL_REGISTERS]
    assert len(set(names)) == len(names)
    assert [regs.offset(n) for n in names] == list(range(0, 4 * len(names), 4))
    assert regs.register("CTRL").access == "w1s" and regs.register("STATUS").access == "ro"
    assert regs.CTRL_START & regs.CTRL_SOFT_RESET == 0
    assert len({regs.STATUS_BUSY, regs.STATUS_DONE, regs.STATUS_ERROR}) == 3
    with pytest.raises(KeyError, match="known: CTRL"):
        regs.offset("NOPE")
    dut = AXI4LiteRegisters(regs.CONTROL_REGISTERS)
    assert all(dut.offset(n) == regs.offset(n) for n in names)


def test_register_spec_checks():
    with pytest.raises(ValueError, match="access"):
        regs.Register("X", "wo")
    with pytest.raises(ValueError, match="upper-case"):
        regs.Register("x", "rw")
    with pytest.raises(ValueError, match="only rw"):
        regs.Register("X", "ro", reset=3)
    with pytest.raises(TypeError):
        regs.Register("X", "rw", reset=1.5)
    with pytest.raises(TypeError, match="register spec"):
        AXI4LiteRegisters([("X",)])
    with pytest.raises(TypeError, match="register spec"):
        AXI4LiteRegisters([["X", "rw"]])
    with pytest.raises(ValueError, match="access"):
        AXI4LiteRegisters([("X", "wo")])
    assert AXI4LiteRegisters([("A", "rw", 5), ("B", "ro")]).registers == (
        regs.Register("A", "rw", 5), regs.Register("B", "ro"))
    with pytest.raises(ValueError, match="repeat"):
        AXI4LiteRegisters([regs.Register("X", "rw"), regs.Register("X", "ro")])
    with pytest.raises(ValueError, match="address bits"):
        AXI4LiteRegisters(regs.CONTROL_REGISTERS, addr_width=3)


def test_read_master_checks():
    with pytest.raises(ValueError, match="power of two"):
        AXI4ReadMaster(data_width=48)
    with pytest.raises(ValueError, match="≤ 256"):
        AXI4ReadMaster(data_width=8, max_burst=257)
    with pytest.raises(ValueError, match="4096"):
        AXI4ReadMaster(data_width=1024, max_burst=64)
    with pytest.raises(ValueError, match="fifo_depth"):
        AXI4ReadMaster(max_burst=16, fifo_depth=8)
    with pytest.raises(TypeError):
        AXI4ReadMaster(max_outstanding=2.0)
    with pytest.raises(ValueError, match="addr_width"):
        axi4_read_signature(addr_width=8)
    with pytest.raises(ValueError, match="32 or 64"):
        axi4lite_signature(8, 16)
    sig = axi4_read_signature(32, 64)
    assert sig.members["rdata"].shape == 64 and sig.members["arlen"].flow.name == "Out"


def test_ddr_read_cycles():
    assert cost.axi_read_cycles(0) == 0
    assert cost.axi_read_cycles(100, 10) == 100 + 10 + cost.AXI_READ_MASTER_LATENCY
    # 1 MiB over one 64-bit port: 131072 beats; over two: half
    assert cost.ddr_read_cycles(1 << 20, 1, 64, 0) == 131072 + cost.AXI_READ_MASTER_LATENCY
    assert cost.ddr_read_cycles(1 << 20, 2, 64, 0) == 65536 + cost.AXI_READ_MASTER_LATENCY
    assert cost.ddr_read_cycles(9, 1, 64, 0) == 2 + cost.AXI_READ_MASTER_LATENCY
    with pytest.raises(ValueError):
        cost.ddr_read_cycles(8, 0)
