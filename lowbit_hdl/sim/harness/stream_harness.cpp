// Fast stream harness of a generated design (lowbit_hdl.sim.fast): a Verilator C++ main
// that plays the AXI DMA in front of the top level's AXI-Stream ports, with no Python in
// the cycle loop.
//
// The model (lowbit_hdl.sim.fast.reset_wrapper around the design) is verilated with
// `--prefix Vtop`; ports: clk, rst (active-high, synchronous),
// s_axis__tdata/tvalid/tready/tlast (input), m_axis__tdata/tvalid/tready/tlast (output).
//
// Usage: Vharness key=value ...
//   in=PATH           input beats, `in_beat_bytes` bytes each, little-endian (the packed
//                     stream bytes of lowbit_hdl.runtime.layout.StreamLayout.pack)
//   sends=PATH        MM2S transfers, int64 triples (first_beat, nbeats, after_recv): a
//                     transfer starts when the previous one is complete and `after_recv`
//                     receive transfers are done; tlast on its last beat
//   out=PREFIX        results: PREFIX.data (output beats), PREFIX.cycle (int64 cycle of each
//                     output beat), PREFIX.last (uint8 tlast of each output beat),
//                     PREFIX.infirst (int64 cycle at which each input frame's first beat was
//                     accepted), PREFIX.json (summary)
//   in_beat_bytes, out_beat_bytes, in_frame_beats (beats of one input frame)
//   recvs=N recv_beats=B  S2MM transfers: N of up to B beats; one completes at tlast or when
//                     full (the Python side checks where tlast was)
//   stall=P seed=S    probability per cycle that MM2S keeps tvalid low (once offered, a
//                     beat is held until accepted; tvalid never depends on tready) and that
//                     S2MM keeps tready low; seeded generator
//   rearm=C           cycles between two receive transfers (S2MM re-armed by the CPU)
//   timeout=C         give up after C cycles without any handshake
//   drain=C           after the last receive transfer, C more cycles with tready high and
//                     no input, counting output beats that should not be there
//   reset=C           cycles of reset at the start
//
// Cycle numbering: cycle 0 is the first cycle after reset; a handshake "at cycle c" is
// presented after clock edge c and taken at edge c + 1 (the cocotb benches' cycle() at their
// ReadOnly sampling point, up to a constant offset).
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// Verilator escapes the double underscore of Amaranth's port names
#define S_TDATA s_axis___05Ftdata
#define S_TVALID s_axis___05Ftvalid
#define S_TREADY s_axis___05Ftready
#define S_TLAST s_axis___05Ftlast
#define M_TDATA m_axis___05Ftdata
#define M_TVALID m_axis___05Ftvalid
#define M_TREADY m_axis___05Ftready
#define M_TLAST m_axis___05Ftlast

namespace {

// --- ports of any width ---------------------------------------------------------------------

template <typename T>
inline void put_bits(T& port, const uint8_t* p, int n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n < 8 ? n : 8);
    port = static_cast<T>(v);
}

template <std::size_t W>
inline void put_bits(VlWide<W>& port, const uint8_t* p, int n) {
    for (std::size_t i = 0; i < W; ++i) {
        uint32_t w = 0;
        int off = static_cast<int>(4 * i);
        int k = n - off;
        if (k > 4) k = 4;
        if (k > 0) std::memcpy(&w, p + off, k);
        port[i] = w;
    }
}

template <typename T>
inline void get_bits(const T& port, uint8_t* p, int n) {
    uint64_t v = static_cast<uint64_t>(port);
    std::memcpy(p, &v, n < 8 ? n : 8);
}

template <std::size_t W>
inline void get_bits(const VlWide<W>& port, uint8_t* p, int n) {
    for (std::size_t i = 0; i < W; ++i) {
        uint32_t w = port[i];
        int off = static_cast<int>(4 * i);
        int k = n - off;
        if (k > 4) k = 4;
        if (k > 0) std::memcpy(p + off, &w, k);
    }
}

// --- seeded generator (splitmix64) -----------------------------------------------------------

struct Rng {
    uint64_t s;
    double next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
    }
};

// --- arguments --------------------------------------------------------------------------------

struct Args {
    std::string in, sends, out;
    long in_beat_bytes = 0, out_beat_bytes = 0, in_frame_beats = 1;
    long recvs = 0, recv_beats = 1, rearm = 0, timeout = 100000, drain = 64, reset = 4;
    double stall = 0.0;
    uint64_t seed = 1;
};

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "stream_harness: %s\n", msg.c_str());
    std::exit(2);
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("+verilator", 0) == 0) continue;  // Verilator's own options
        auto eq = s.find('=');
        if (eq == std::string::npos) die("argument " + s + " is not key=value");
        std::string k = s.substr(0, eq), v = s.substr(eq + 1);
        if (k == "in") a.in = v;
        else if (k == "sends") a.sends = v;
        else if (k == "out") a.out = v;
        else if (k == "in_beat_bytes") a.in_beat_bytes = std::stol(v);
        else if (k == "out_beat_bytes") a.out_beat_bytes = std::stol(v);
        else if (k == "in_frame_beats") a.in_frame_beats = std::stol(v);
        else if (k == "recvs") a.recvs = std::stol(v);
        else if (k == "recv_beats") a.recv_beats = std::stol(v);
        else if (k == "rearm") a.rearm = std::stol(v);
        else if (k == "timeout") a.timeout = std::stol(v);
        else if (k == "drain") a.drain = std::stol(v);
        else if (k == "reset") a.reset = std::stol(v);
        else if (k == "stall") a.stall = std::stod(v);
        else if (k == "seed") a.seed = std::stoull(v);
        else die("unknown argument " + k);
    }
    if (a.in.empty() || a.sends.empty() || a.out.empty()) die("in=, sends= and out= are needed");
    if (a.in_beat_bytes <= 0 || a.out_beat_bytes <= 0 || a.in_frame_beats <= 0)
        die("in_beat_bytes, out_beat_bytes and in_frame_beats must be positive");
    if (a.reset < 1) die("reset must be at least 1 cycle");
    return a;
}

std::vector<uint8_t> slurp(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) die("cannot open " + path);
    std::fseek(f, 0, SEEK_END);
    long n = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    std::vector<uint8_t> buf(static_cast<std::size_t>(n));
    if (n && std::fread(buf.data(), 1, buf.size(), f) != buf.size()) die("cannot read " + path);
    std::fclose(f);
    return buf;
}

FILE* create(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) die("cannot create " + path);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    Args a = parse(argc, argv);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<uint8_t> input = slurp(a.in);
    std::vector<uint8_t> sraw = slurp(a.sends);
    const std::size_t nsends = sraw.size() / (3 * sizeof(int64_t));
    std::vector<int64_t> sends(3 * nsends);
    if (nsends) std::memcpy(sends.data(), sraw.data(), sends.size() * sizeof(int64_t));
    const long in_beats_total = static_cast<long>(input.size()) / a.in_beat_bytes;
    for (std::size_t i = 0; i < nsends; ++i)
        if (sends[3 * i] < 0 || sends[3 * i + 1] <= 0 ||
            sends[3 * i] + sends[3 * i + 1] > in_beats_total)
            die("send transfer " + std::to_string(i) + " lies outside the input");

    VerilatedContext ctx;
    ctx.commandArgs(argc, argv);
    Vtop top{&ctx};

    FILE* f_data = create(a.out + ".data");
    FILE* f_cycle = create(a.out + ".cycle");
    FILE* f_last = create(a.out + ".last");
    FILE* f_infirst = create(a.out + ".infirst");
    std::vector<uint8_t> beat(static_cast<std::size_t>(a.out_beat_bytes) + 8);

    Rng rng{a.seed * 0x2545F4914F6CDD1Dull + 1};
    const double p = a.stall;
    const bool stalls = p > 0.0;

    // reset, then one idle cycle. The design's rst comes through a register of the wrapper
    // (lowbit_hdl.sim.fast.reset_wrapper, initially 1): it sees at each edge the rst driven
    // one cycle before, so rst is deasserted here one cycle early.
    top.clk = 0;
    top.S_TVALID = 0;
    top.S_TLAST = 0;
    top.M_TREADY = 0;
    for (long i = 0; i < a.reset; ++i) {
        top.rst = i + 1 < a.reset;
        top.clk = 0;
        top.eval();
        top.clk = 1;
        top.eval();
    }
    top.clk = 0;
    top.eval();
    top.clk = 1;
    top.eval();

    int64_t cycle = 0;
    std::size_t si = 0;         // next send transfer
    long sb = 0, sn = 0;        // beat within the active transfer, its length
    const uint8_t* sbase = nullptr;
    bool send_active = false, offered = false;
    long in_beats = 0, out_beats = 0, ri = 0, rb = 0, rearm_left = 0, idle = 0;
    bool armed = a.recvs > 0;
    const char* status = "ok";

    while (ri < a.recvs) {
        if (!send_active && si < nsends && ri >= sends[3 * si + 2]) {
            sbase = input.data() + sends[3 * si] * a.in_beat_bytes;
            sn = static_cast<long>(sends[3 * si + 1]);
            sb = 0;
            send_active = true;
        }
        if (!armed) {
            if (rearm_left <= 0) armed = true;
            else --rearm_left;
        }
        if (send_active && !offered) offered = !stalls || rng.next() >= p;
        const bool valid = send_active && offered;
        if (valid) {
            put_bits(top.S_TDATA, sbase + sb * a.in_beat_bytes,
                     static_cast<int>(a.in_beat_bytes));
            top.S_TLAST = sb == sn - 1;
        }
        top.S_TVALID = valid;
        const bool ready = armed && (!stalls || rng.next() >= p);
        top.M_TREADY = ready;
        top.clk = 0;
        top.eval();
        bool progress = false;
        if (valid && top.S_TREADY) {
            if (in_beats % a.in_frame_beats == 0) std::fwrite(&cycle, 8, 1, f_infirst);
            ++in_beats;
            ++sb;
            offered = false;
            progress = true;
            if (sb == sn) {
                send_active = false;
                ++si;
            }
        }
        if (ready && top.M_TVALID) {
            get_bits(top.M_TDATA, beat.data(), static_cast<int>(a.out_beat_bytes));
            const uint8_t last = top.M_TLAST ? 1 : 0;
            std::fwrite(beat.data(), 1, a.out_beat_bytes, f_data);
            std::fwrite(&cycle, 8, 1, f_cycle);
            std::fwrite(&last, 1, 1, f_last);
            ++out_beats;
            ++rb;
            progress = true;
            if (last || rb >= a.recv_beats) {
                ++ri;
                rb = 0;
                armed = false;
                rearm_left = a.rearm;
            }
        }
        top.clk = 1;
        top.eval();
        ++cycle;
        idle = progress ? 0 : idle + 1;
        if (idle > a.timeout) {
            status = "timeout";
            break;
        }
    }
    const bool inputs_left = si < nsends;
    // anything more coming out would land in the next batch: watch the output a while
    long extra = 0;
    const int64_t done_cycle = cycle;
    if (std::strcmp(status, "ok") == 0) {
        top.S_TVALID = 0;
        top.M_TREADY = 1;
        for (long i = 0; i < a.drain; ++i) {
            top.clk = 0;
            top.eval();
            if (top.M_TVALID) ++extra;
            top.clk = 1;
            top.eval();
            ++cycle;
        }
    }
    top.final();
    std::fclose(f_data);
    std::fclose(f_cycle);
    std::fclose(f_last);
    std::fclose(f_infirst);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    FILE* f_json = create(a.out + ".json");
    std::fprintf(f_json,
                 "{\"status\": \"%s\", \"cycles\": %lld, \"done_cycle\": %lld, "
                 "\"reset_cycles\": %ld, \"in_beats\": %ld, \"in_beats_total\": %ld, "
                 "\"inputs_left\": %s, \"out_beats\": %ld, \"recvs_done\": %ld, "
                 "\"extra_beats\": %ld, \"seconds\": %.6f}\n",
                 status, static_cast<long long>(cycle), static_cast<long long>(done_cycle),
                 a.reset + 1, in_beats, in_beats_total, inputs_left ? "true" : "false",
                 out_beats, ri, extra, secs);
    std::fclose(f_json);
    return std::strcmp(status, "ok") == 0 ? 0 : 1;
}
