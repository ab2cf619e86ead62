"""AXI hardware: an AXI4 burst read master for streaming data from DDR, and an AXI4-Lite
slave register file for control.

Bus interfaces are flat signatures whose members carry the AXI names, so Amaranth's Verilog
ports read ``m_axi__araddr``, ``s_axil__wdata`` and so on (Amaranth joins with ``__``;
cocotbext-axi finds them with ``bus_separator="__"``, Vivado's interface inference with a
``m_axi_``-style map in the packaging script). Directions are those of the master: ``Out``
for master-driven signals; a slave port is ``In(signature)``.

* :class:`AXI4ReadMaster`: commands (byte address, length in beats) in, data words out in
  order; INCR bursts of at most ``max_burst`` beats that never cross a 4 KiB boundary, up to
  ``max_outstanding`` bursts in flight, and an address request only when the output FIFO has
  room reserved for the whole burst, so ``RREADY`` stays high whatever the consumer does.
  Cycles: :func:`lowbit_hdl.cost.axi_read_cycles`.
* :class:`AXI4LiteRegisters`: 32-bit registers 4 bytes apart (``rw``, ``ro``, ``w1s``
  pulses), SLVERR on unmapped addresses; the control block's map is
  :data:`lowbit_hdl.runtime.regs.CONTROL_REGISTERS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..cost import AXI_READ_MASTER_LATENCY
from ..runtime.regs import REGISTER_BYTES, Register
from .fifo import StreamFIFO
from .params import check_int

__all__ = [
    "axi4_read_signature", "axi4lite_signature", "AXI4ReadMaster", "AXI4LiteRegisters",
    "RESP_OKAY", "RESP_SLVERR", "RESP_DECERR", "PAGE_BYTES",
]

RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3
BURST_INCR = 1
#: AXI bursts must not cross this boundary
PAGE_BYTES = 4096
#: ARCACHE "normal non-cacheable bufferable", what Xilinx recommends for HP-port masters
ARCACHE = 0b0011


def _check_data_width(name: str, width: object, low: int, high: int) -> int:
    width = check_int(name, width, low)
    if width > high or width & (width - 1):
        raise ValueError(f"{name}={width} must be a power of two from {low} to {high}")
    return width


def axi4_read_signature(addr_width: int = 32, data_width: int = 64,
                        id_width: int = 1) -> wiring.Signature:
    """The read channels (AR and R) of an AXI4 master, as seen from the master.

    Parameters
    ----------
    addr_width : int
        ``ARADDR`` bits (12 to 64).
    data_width : int
        ``RDATA`` bits, a power of two from 8 to 1024.
    id_width : int
        ``ARID``/``RID`` bits (≥ 1).

    Returns
    -------
    wiring.Signature
        Members ``araddr arlen arsize arburst arcache arprot arvalid arid rready`` (``Out``)
        and ``arready rdata rresp rlast rvalid rid`` (``In``).

    Raises
    ------
    TypeError
        If a width is not an int.
    ValueError
        If a width is out of range.
    """
    addr_width = check_int("addr_width", addr_width, 12)
    if addr_width > 64:
        raise ValueError(f"addr_width={addr_width} must be ≤ 64")
    data_width = _check_data_width("data_width", data_width, 8, 1024)
    id_width = check_int("id_width", id_width, 1)
    return wiring.Signature({
        "araddr": Out(addr_width), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
        "arcache": Out(4), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "arid": Out(id_width),
        "rdata": In(data_width), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
        "rready": Out(1), "rid": In(id_width),
    })


def axi4lite_signature(addr_width: int, data_width: int = 32) -> wiring.Signature:
    """An AXI4-Lite interface (AW, W, B, AR, R), as seen from the master.

    Parameters
    ----------
    addr_width : int
        Address bits (≥ 2).
    data_width : int
        32 or 64.

    Returns
    -------
    wiring.Signature
        Members ``awaddr awprot awvalid wdata wstrb wvalid bready araddr arprot arvalid
        rready`` (``Out``) and ``awready wready bresp bvalid arready rdata rresp rvalid``
        (``In``).

    Raises
    ------
    TypeError
        If a width is not an int.
    ValueError
        If ``addr_width < 2`` or ``data_width`` is neither 32 nor 64.
    """
    addr_width = check_int("addr_width", addr_width, 2)
    data_width = check_int("data_width", data_width)
    if data_width not in (32, 64):
        raise ValueError(f"data_width={data_width} must be 32 or 64 (AXI4-Lite)")
    return wiring.Signature({
        "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
        "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


class AXI4ReadMaster(wiring.Component):
    """AXI4 burst read master: read commands in, data words out, in order.

    A command ``{addr, beats}`` asks for ``beats`` words of ``data_width`` bits from byte
    address ``addr`` (aligned to ``data_width/8`` bytes; the low bits are ignored). The master
    splits it into INCR bursts of at most ``max_burst`` beats that never cross a 4 KiB
    boundary and keeps up to ``max_outstanding`` bursts in flight. It issues a burst's address
    only when ``fifo_depth`` words of output FIFO have room reserved for all its beats, so
    ``m_axi.rready`` is always high: a slow consumer never back-pressures the interconnect.
    A command of 0 beats is accepted and does nothing.

    Cycles: with the consumer always ready, a memory that answers an address ``L_mem`` cycles
    after its handshake and then returns one beat per cycle, and bursts in flight and FIFO
    enough for the round trip (:func:`lowbit_hdl.cost.axi_read_full_rate`:
    ``max_outstanding · max_burst ≥ L_mem + max_burst + 1``, ``fifo_depth ≥ L_mem +
    max_burst + 3``), a command of ``N`` beats (or commands queued back to back, ``N`` beats
    in all, each of at least 2 beats) takes
    ``N + L_mem + 4`` cycles from the first command handshake to the last output beat, both
    counted (:func:`lowbit_hdl.cost.axi_read_cycles`; the 4 are
    :data:`~lowbit_hdl.cost.AXI_READ_MASTER_LATENCY`: command register, address register,
    FIFO write, FIFO output register).

    Errors: a beat with ``RRESP ≠ OKAY`` sets ``error`` (sticky until ``clear``) and stores
    its ``RRESP`` in ``error_code`` (the first one). The master still completes every
    command and delivers every beat (as the slave returned it, zeros from most), so a
    consumer counting beats never hangs; the owner reports the error. There is no abort: a
    reset while bursts are in flight breaks the AXI protocol, so wait for ``busy`` to fall.

    Parameters
    ----------
    data_width : int
        Bits of ``RDATA`` and of an output word: a power of two from 8 to 1024.
    addr_width : int
        Address bits (12 to 64).
    max_burst : int
        Largest burst in beats, 1 to 256, with ``max_burst · data_width/8 ≤ 4096``.
    max_outstanding : int
        Bursts in flight at most (≥ 1).
    fifo_depth : int or None
        Output FIFO words (≥ ``max_burst`` and ≥ 2); default ``max_burst · max_outstanding``.
    beats_width : int
        Bits of a command's beat count (default 24: up to 16 Mi beats, 128 MiB at 64 bits).

    Attributes
    ----------
    cmd : In(stream.Signature(StructLayout({"addr": addr_width, "beats": beats_width})))
        Read commands (``addr`` in the low bits of the Verilog port).
    o : Out(stream.Signature(unsigned(data_width)))
        Data words in address order.
    m_axi : Out(axi4_read_signature(addr_width, data_width))
        The AXI4 read channels (ID 0, ``ARCACHE = 0b0011``, ``ARPROT = 0``).
    error : Out(1)
        A read returned ``SLVERR`` or ``DECERR`` since reset or ``clear``.
    error_code : Out(2)
        The ``RRESP`` of the first failed beat (2 SLVERR, 3 DECERR), 0 while ``error`` is low.
    bytes_read : Out(32)
        Bytes received on R since reset or ``clear`` (wraps).
    busy : Out(1)
        A command is being split, a burst is in flight or the output FIFO holds words.
    clear : In(1)
        Clears ``error``, ``error_code`` and ``bytes_read``.

    Raises
    ------
    TypeError
        If a parameter is not an int.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, data_width: int = 64, addr_width: int = 32, max_burst: int = 16,
                 max_outstanding: int = 4, fifo_depth: int | None = None,
                 beats_width: int = 24) -> None:
        bus = axi4_read_signature(addr_width, data_width)
        max_burst = check_int("max_burst", max_burst, 1)
        if max_burst > 256:
            raise ValueError(f"max_burst={max_burst} must be ≤ 256 (AXI4 INCR bursts)")
        if max_burst * data_width // 8 > PAGE_BYTES:
            raise ValueError(f"max_burst={max_burst} beats of {data_width // 8} bytes cross "
                             f"{PAGE_BYTES}-byte boundaries; at most "
                             f"{PAGE_BYTES * 8 // data_width}")
        max_outstanding = check_int("max_outstanding", max_outstanding, 1)
        if fifo_depth is None:
            fifo_depth = max(2, max_burst * max_outstanding)
        fifo_depth = check_int("fifo_depth", fifo_depth, max(2, max_burst),
                               "(a whole burst must fit, and two words at least)")
        beats_width = check_int("beats_width", beats_width, 1)
        self.data_width, self.addr_width = data_width, addr_width
        self.max_burst, self.max_outstanding = max_burst, max_outstanding
        self.fifo_depth, self.beats_width = fifo_depth, beats_width
        self.cmd_layout = data.StructLayout({"addr": addr_width, "beats": beats_width})
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "o": Out(stream.Signature(unsigned(data_width))),
            "m_axi": Out(bus),
            "error": Out(1),
            "error_code": Out(2),
            "bytes_read": Out(32),
            "busy": Out(1),
            "clear": In(1),
        })

    #: cycles the master adds to the memory latency (see the class docstring)
    latency = AXI_READ_MASTER_LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        bpb = self.data_width // 8
        lo = bpb.bit_length() - 1  # log2(bytes per beat)
        page_beats = PAGE_BYTES // bpb
        depth = self.fifo_depth
        axi = self.m_axi

        m.submodules.fifo = fifo = StreamFIFO(self.data_width, depth)
        wiring.connect(m, wiring.flipped(self.o), fifo.o)

        addr = Signal(self.addr_width)  # next burst's byte address (aligned)
        left = Signal(self.beats_width)  # beats of the current command not yet requested
        free = Signal(range(depth + 1), init=depth)  # FIFO words not reserved
        inflight = Signal(range(self.max_outstanding + 1))  # bursts requested, not finished

        # burst length: min(left, max_burst, beats to the next 4 KiB boundary); to_page is
        # kept in a register beside addr (a subtraction less in front of the issue logic,
        # the read master's longest path)
        to_page = Signal(range(page_beats + 1), init=page_beats)
        blen = Signal(range(max(self.max_burst, 2) + 1))
        with m.If((left <= self.max_burst) & (left <= to_page)):
            m.d.comb += blen.eq(left)
        with m.Elif(to_page <= self.max_burst):
            m.d.comb += blen.eq(to_page)
        with m.Else():
            m.d.comb += blen.eq(self.max_burst)

        # command: taken when the previous one is fully requested
        m.d.comb += self.cmd.ready.eq(left == 0)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [addr.eq(self.cmd.payload.addr & ~Const(bpb - 1, self.addr_width)),
                         to_page.eq(page_beats - self.cmd.payload.addr[lo:12]),
                         left.eq(self.cmd.payload.beats)]

        # address channel: a registered request, reloaded in the cycle it is accepted
        can_issue = (left != 0) & (inflight != self.max_outstanding) & (free >= blen)
        load = Signal()
        m.d.comb += load.eq((~axi.arvalid | axi.arready) & can_issue)
        with m.If(~axi.arvalid | axi.arready):
            m.d.sync += axi.arvalid.eq(can_issue)
        with m.If(load):
            m.d.sync += [axi.araddr.eq(addr), axi.arlen.eq(blen - 1),
                         addr.eq(addr + (blen << lo)), left.eq(left - blen),
                         to_page.eq(Mux(blen == to_page, page_beats, to_page - blen))]
        m.d.comb += [axi.arsize.eq(lo), axi.arburst.eq(BURST_INCR), axi.arcache.eq(ARCACHE),
                     axi.arprot.eq(0), axi.arid.eq(0)]

        # data channel: straight into the FIFO, whose room was reserved (ready stays high)
        r_fire = axi.rvalid & axi.rready
        m.d.comb += [fifo.i.valid.eq(axi.rvalid), fifo.i.payload.eq(axi.rdata),
                     axi.rready.eq(fifo.i.ready)]
        o_fire = self.o.valid & self.o.ready
        m.d.sync += [free.eq(free - Mux(load, blen, 0) + o_fire),
                     inflight.eq(inflight + load - (r_fire & axi.rlast))]

        with m.If(self.clear):
            m.d.sync += [self.error.eq(0), self.error_code.eq(0), self.bytes_read.eq(0)]
        with m.If(r_fire):
            m.d.sync += self.bytes_read.eq(Mux(self.clear, 0, self.bytes_read) + bpb)
            with m.If((axi.rresp >= RESP_SLVERR) & (~self.error | self.clear)):
                m.d.sync += [self.error.eq(1), self.error_code.eq(axi.rresp)]
        m.d.comb += self.busy.eq((left != 0) | (free != depth))
        return m


def _as_register(spec: object) -> Register:
    """A :class:`Register`, or one made from a ``(name, access[, reset])`` tuple."""
    if isinstance(spec, Register):
        return spec
    if isinstance(spec, tuple) and 2 <= len(spec) <= 3:
        return Register(*spec)
    raise TypeError(f"register spec {spec!r} must be a lowbit_hdl.runtime.regs.Register or "
                    "a (name, access[, reset]) tuple")


def _port_name(reg: Register) -> str:
    return reg.name.lower()


class AXI4LiteRegisters(wiring.Component):
    """AXI4-Lite slave with 32-bit registers at offsets 0, 4, 8, … in the order given.

    Each register gets a port named after it in lower case:

    * ``rw``: ``Out(32)``, the stored value (reset value from the spec); writes honour
      ``WSTRB`` byte lanes.
    * ``ro``: ``In(32)``, sampled when the read address is accepted.
    * ``w1s``: ``Out(32)``, high for exactly one cycle with the written bits (byte lanes
      masked by ``WSTRB``) after a write; reads return 0.

    ``AW`` and ``W`` may arrive in either order or together; the write takes effect, and
    ``BVALID`` rises, the cycle after both are held. Reads answer the cycle after the address
    handshake. One read and one write are served at a time (each channel's ``ready`` is low
    while its response waits). Addresses are decoded on the full ``addr_width`` bits, the two
    byte-lane bits ignored (``WSTRB`` selects the bytes); an address past the last register
    gets ``SLVERR`` and changes nothing.

    Parameters
    ----------
    registers : sequence of lowbit_hdl.runtime.regs.Register or (name, access, reset) tuples
        The map (e.g. :data:`lowbit_hdl.runtime.regs.CONTROL_REGISTERS`); ``access`` is
        ``"rw"``, ``"ro"`` or ``"w1s"``.
    addr_width : int
        Address bits of the slave port (≥ the bits the map needs; default 12, a 4 KiB window).

    Attributes
    ----------
    s_axil : In(axi4lite_signature(addr_width, 32))
        The AXI4-Lite slave port.
    <name> : Out(32) or In(32)
        One per register, see above.

    Raises
    ------
    TypeError
        If ``registers`` holds something other than register specs.
    ValueError
        If it is empty, names repeat or clash with ``s_axil``, or ``addr_width`` is too small.
    """

    def __init__(self, registers: Sequence[Register], addr_width: int = 12) -> None:
        if isinstance(registers, (str, bytes)) or not isinstance(registers, Sequence):
            raise TypeError(f"registers={registers!r} must be a sequence of Register")
        regs = tuple(_as_register(r) for r in registers)
        if not regs:
            raise ValueError("registers must not be empty")
        names = [_port_name(r) for r in regs]
        if len(set(names)) != len(names):
            raise ValueError(f"register names repeat: {[r.name for r in regs]}")
        if "s_axil" in names:
            raise ValueError("a register may not be called S_AXIL (the bus port)")
        need = max(2, (REGISTER_BYTES * len(regs) - 1).bit_length())
        addr_width = check_int("addr_width", addr_width, need,
                               f"({len(regs)} registers need {need} address bits)")
        self.registers, self.addr_width = regs, addr_width
        members: dict[str, object] = {"s_axil": In(axi4lite_signature(addr_width, 32))}
        for r in regs:
            members[_port_name(r)] = (In(32) if r.access == "ro"
                                      else Out(32, init=r.reset) if r.access == "rw"
                                      else Out(32))
        super().__init__(members)

    def offset(self, name: str) -> int:
        """Byte offset of register ``name`` (upper case, as in its spec)."""
        for i, r in enumerate(self.registers):
            if r.name == name:
                return REGISTER_BYTES * i
        raise KeyError(f"no register {name!r}")

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.s_axil
        n = len(self.registers)

        def decode(address):
            """(index, mapped) of a byte address (the byte-lane bits are ignored)."""
            index = address[2:]
            return index, index < n

        # ---- writes: AW and W latched independently, applied once both are held
        aw_held, w_held = Signal(), Signal()
        aw_addr = Signal(self.addr_width)
        w_data, w_strb = Signal(32), Signal(4)
        m.d.comb += [bus.awready.eq(~aw_held & ~bus.bvalid), bus.wready.eq(~w_held & ~bus.bvalid)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_held.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_held.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        mask = Signal(32)
        m.d.comb += mask.eq(sum((w_strb[b].replicate(8) << (8 * b) for b in range(4)),
                                start=Const(0, 32)))
        w_index, w_mapped = decode(aw_addr)
        do_write = aw_held & w_held & ~bus.bvalid
        for i, r in enumerate(self.registers):
            port = getattr(self, _port_name(r))
            if r.access == "w1s":
                m.d.sync += port.eq(Mux(do_write & w_mapped & (w_index == i), w_data & mask, 0))
            elif r.access == "rw":
                with m.If(do_write & w_mapped & (w_index == i)):
                    m.d.sync += port.eq((port & ~mask) | (w_data & mask))
        with m.If(do_write):
            m.d.sync += [bus.bvalid.eq(1), bus.bresp.eq(Mux(w_mapped, RESP_OKAY, RESP_SLVERR))]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += [bus.bvalid.eq(0), aw_held.eq(0), w_held.eq(0)]

        # ---- reads: one at a time, answered the cycle after the address handshake
        m.d.comb += bus.arready.eq(~bus.rvalid)
        r_index, r_mapped = decode(bus.araddr)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rresp.eq(Mux(r_mapped, RESP_OKAY, RESP_SLVERR)),
                         bus.rdata.eq(0)]
            with m.Switch(r_index):
                for i, r in enumerate(self.registers):
                    if r.access != "w1s":
                        with m.Case(i):
                            with m.If(r_mapped):
                                m.d.sync += bus.rdata.eq(getattr(self, _port_name(r)))
        with m.Elif(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        return m
