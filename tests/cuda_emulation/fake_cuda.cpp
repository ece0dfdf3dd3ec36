// fake_cuda.cpp — the CUDA runtime and cuBLAS calls that src/backend/cuda/host.c
// and src/backend/cuda/devices.c make, implemented on the CPU, so that the library's
// CUDA backend (its host code unchanged, its kernels through
// cuda_runtime.h's emulation) runs the whole test suite on machines without
// a GPU: the "emulated GPU" build of tests/cuda.cmake.
//
// It is strict where a real GPU would be, so that the host code's mistakes
// show here:
//  - Streams are asynchronous: copies, memsets, kernels and GEMMs are queued
//    and run only when something waits (a stream or event synchronisation, a
//    copy to pageable host memory, cudaFree). A copy out of pinned memory
//    reads it when it runs, so refilling a staging area too early is caught;
//    a copy out of pageable memory takes its bytes at the call, as CUDA does.
//  - Two devices; device 0 is current at start (BP_EMU_DEVICE=1 makes it
//    device 1); BP_EMU_DEVICES=1 shows only device 0 (a one-GPU machine). A kernel launched into a
//    stream, or a GEMM through a handle, of a device that is not current fails, as on a GPU.
//  - Fresh device memory is filled with 0xCD, not zeros.
//  - Copies, memsets and GEMM operands must lie inside one device
//    allocation; 16 GiB per device; failures set the last error as CUDA does.
//  - Stream capture records a CUDA graph that can be replayed; while a thread
//    captures, it may not allocate or free, and the capturing stream may not
//    be waited for (the capture is then invalidated), as with
//    cudaStreamCaptureModeThreadLocal on a GPU. Another stream that waits for
//    an event recorded in the capture joins it (a fork) and must be joined
//    back to the origin stream before the capture ends
//    (cudaErrorStreamCaptureUnjoined otherwise); while it is captured it is
//    captured work like the origin: a host wait for it, or a query of an
//    event recorded on it, is refused as CUDA refuses it.
//  - At exit, device memory, pinned memory, streams, events, cuBLAS handles
//    or graphs still alive are reported and the process fails.
// GEMMs run on CBLAS; TF32 and BF16 compute types round their inputs to 10
// and 7 mantissa bits (round to nearest even) before an FP32 product.
// cublasGemmEx takes the type combinations cuBLAS documents for it that the
// library uses, and refuses the others (CUBLAS_STATUS_NOT_SUPPORTED):
// A, B, C all CUDA_R_32F with COMPUTE_32F, _FAST_TF32 or _FAST_16BF; A and B
// both CUDA_R_16BF or both CUDA_R_16F with C of the same type or CUDA_R_32F
// and COMPUTE_32F (16-bit inputs, float32 sums; a 16-bit C is the float32
// result rounded to nearest even, here by this file's own conversions).
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "emu_hooks.h"
#include "fake_cuda_internal.h"

namespace {

const int kDevices = 2;
const size_t kDeviceMemory = (size_t)16 << 30;

struct Stream;

// Nodes of the device's dependency graph (emu_hooks.h, bp_emu_work.node):
// each a piece of logged work, with the nodes it waits for.
using Nodes = std::vector<long long>;

struct Graph {
    std::vector<std::function<void()>> ops;
    // Per op: its node in this graph (numbered from 0; -1 for what is not
    // logged work) and the graph's nodes it waits for (none: the graph's
    // start, so whatever the launching stream waits for).
    std::vector<long long> op_node;
    std::vector<Nodes> op_deps;
    long long nodes = 0;
    // Work made again at each launch (a collective's part: fake_nccl.cpp),
    // by the index of its place in ops.
    std::map<size_t, std::function<std::function<void()>(Stream *)>> made_at_launch;
};

struct Stream {
    int device;
    std::deque<std::function<void()>> pending;
    Graph *capture = nullptr; // recording into, while capturing
    bool capture_invalid = false;
    cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
    // A fork: the origin stream of the capture this stream joined (the
    // stream itself for the origin), whether its last captured work has
    // been joined back to the origin, and its captured operations so far.
    Stream *capture_origin = nullptr;
    bool capture_joined = true;
    long capture_ops = 0;
    // The nodes the next work on this stream waits for: eagerly, and in
    // the graph being captured.
    Nodes frontier{}, capture_frontier{};
    // For the race check: the stream's number (-1: none yet) and its vector
    // clock (per stream number, the last of its work this one is ordered
    // after).
    int id = -1;
    std::vector<long long> clock{};
};

struct Event {
    Stream *stream = nullptr; // last recorded on
    bool done = true;
    Graph *captured = nullptr;     // the capture it was last recorded into, if any
    Stream *captured_on = nullptr; // the stream of that capture
    long captured_at = 0;          // captured_on's capture_ops when recorded
    Nodes frontier;                // what a wait for it waits for (eager or in the capture)
    std::vector<long long> clock;  // the recording stream's vector clock
};

struct Handle {
    int device;
    Stream *stream = nullptr; // nullptr: the device's default stream
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

struct State {
    std::recursive_mutex mu;
    std::map<char *, size_t> device_mem[kDevices];
    size_t device_used[kDevices] = {0, 0};
    std::map<char *, size_t> pinned;
    std::set<Stream *> streams;
    std::set<Event *> events;
    std::set<Handle *> handles;
    std::set<Graph *> graphs, execs;
    Stream default_stream[kDevices] = {{0, {}, nullptr, false, cudaStreamCaptureModeGlobal},
                                       {1, {}, nullptr, false, cudaStreamCaptureModeGlobal}};
    // Captures in cudaStreamCaptureModeGlobal under way on any thread.
    int global_captures = 0;
    // The race check: what recent work touched, the numbers given to
    // streams, and the vector clock of what the host has waited for.
    struct Touched {
        uintptr_t lo, hi;
        bool write;
        int stream;
        long long seq;
        const Graph *graph; // the capture it was recorded into, or none
    };
    std::deque<Touched> touched;
    int next_stream_id = 0;
    std::vector<long long> host_clock;
    // The sticky error of a faulted kernel: every later call returns it.
    cudaError_t sticky = cudaSuccess;
    bp_emu_counters counters = {};

    ~State()
    {
        size_t dev = device_mem[0].size() + device_mem[1].size();
        size_t g = graphs.size() + execs.size();
        if (dev + pinned.size() + streams.size() + events.size() + handles.size() + g == 0)
            return;
        std::fprintf(stderr,
                     "fake CUDA: at exit, still alive: %zu device allocations, %zu pinned host "
                     "allocations, %zu streams, %zu events, %zu cuBLAS handles, %zu graphs\n",
                     dev, pinned.size(), streams.size(), events.size(), handles.size(), g);
        std::_Exit(3);
    }
};

State &state()
{
    static State s;
    return s;
}

// The devices a program sees: kDevices, or 1 with BP_EMU_DEVICES=1.
int visible_devices()
{
    static const int n = [] {
        const char *v = std::getenv("BP_EMU_DEVICES");
        return v && v[0] == '1' && v[1] == '\0' ? 1 : kDevices;
    }();
    return n;
}

int initial_device()
{
    const char *v = std::getenv("BP_EMU_DEVICE");
    return v && (v[0] == '0' || v[0] == '1') && v[1] == '\0' ? v[0] - '0' : 0;
}

thread_local int current_device = initial_device();
thread_local cudaError_t last_error = cudaSuccess;
thread_local Stream *capturing = nullptr; // the stream this thread captures on

cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

// The entry of every runtime call: the lock, the count, and the sticky
// error of an earlier kernel fault (which the context can never lose).
// Destroying and freeing still work then, so that tests can clean up.
#define LOCKED_CALL() std::lock_guard<std::recursive_mutex> lock(state().mu)
#define API_CALL_ALWAYS() \
    LOCKED_CALL();        \
    state().counters.runtime_calls++
#define API_CALL()                     \
    API_CALL_ALWAYS();                 \
    if (state().sticky != cudaSuccess) \
    return fail(state().sticky)
#define BLAS_CALL()                    \
    LOCKED_CALL();                     \
    if (state().sticky != cudaSuccess) \
    return CUBLAS_STATUS_EXECUTION_FAILED

// Whether this thread may not make a "potentially unsafe" call (allocate,
// free, synchronise, a synchronous copy, the legacy stream): it captures
// in global or thread-local mode, or another thread captures in global
// mode (cudaThreadExchangeStreamCaptureMode's rules).
bool unsafe_forbidden()
{
    if (capturing && capturing->capture_mode != cudaStreamCaptureModeRelaxed)
        return true;
    return state().global_captures >
           (capturing && capturing->capture_mode == cudaStreamCaptureModeGlobal ? 1 : 0);
}

// A call that capture forbids: it fails and spoils this thread's capture,
// and that of the captured stream it concerns (a fork's origin).
cudaError_t forbidden_in_capture(cudaError_t why = cudaErrorStreamCaptureUnsupported,
                                 Stream *concerned = nullptr)
{
    if (capturing)
        capturing->capture_invalid = true;
    if (concerned && concerned->capture && concerned->capture_origin)
        concerned->capture_origin->capture_invalid = true;
    return fail(why);
}

// A kernel or other device work that fails when it runs: the fault is
// sticky, and work queued after it never runs.
void device_fault(cudaError_t e)
{
    if (state().sticky == cudaSuccess)
        state().sticky = e;
}

long long next_node = 0;

// Adds b's nodes to a, once each.
void merge_nodes(Nodes &a, const Nodes &b)
{
    for (long long n : b)
        if (std::find(a.begin(), a.end(), n) == a.end())
            a.push_back(n);
}

// A node queued on st: op runs with its place in the graph made known to
// the work log.
void queue_node(Stream *st, std::function<void()> op, long long node, Nodes deps)
{
    st->pending.push_back([op, node, deps] {
        int n = deps.size() > BP_EMU_MAX_DEPS ? -1 : (int)deps.size();
        bp_emu::set_running_node(node, deps.data(), n);
        op();
        bp_emu::set_running_node(-1, nullptr, 0);
    });
}

// ---- the race check (emu_hooks.h: races) ----

struct Access {
    uintptr_t lo, hi;
    bool write;
};
thread_local std::vector<Access> next_accesses;

void merge_clock(std::vector<long long> &a, const std::vector<long long> &b)
{
    if (a.size() < b.size())
        a.resize(b.size(), 0);
    for (size_t i = 0; i < b.size(); i++)
        a[i] = std::max(a[i], b[i]);
}

int stream_number(Stream *st)
{
    if (st->id < 0)
        st->id = state().next_stream_id++;
    return st->id;
}

// What the host has waited for is ordered before all later work: the race
// check forgets it.
void forget_waited_for()
{
    State &s = state();
    std::deque<State::Touched> &t = s.touched;
    t.erase(std::remove_if(t.begin(), t.end(),
                           [&s](const State::Touched &x) {
                               return x.graph == nullptr && (size_t)x.stream < s.host_clock.size() &&
                                      s.host_clock[(size_t)x.stream] >= x.seq;
                           }),
            t.end());
}

void host_waited_for_clock(const std::vector<long long> &clock)
{
    merge_clock(state().host_clock, clock);
    forget_waited_for();
}

// The host waited for st's work (a synchronisation): work issued later on
// any stream is ordered after it.
void host_waited_for(Stream *st) { host_waited_for_clock(st->clock); }

void host_waited_for_all()
{
    State &s = state();
    for (Stream *st : s.streams)
        merge_clock(s.host_clock, st->clock);
    for (Stream &st : s.default_stream)
        merge_clock(s.host_clock, st.clock);
    forget_waited_for();
}

void report_race(const State::Touched &t, const Access &a, int stream)
{
    State &s = state();
    static const bool print = std::getenv("BP_EMU_QUIET_RACES") == nullptr;
    if (++s.counters.races > 3 || !print)
        return;
    std::fprintf(stderr,
                 "fake CUDA: a race: work on stream %d %s [%#lx, +%lu), which earlier work on "
                 "stream %d %s, with no event, stream order or host wait between them\n",
                 stream, a.write ? "writes" : "reads", (unsigned long)a.lo,
                 (unsigned long)(a.hi - a.lo), t.stream, t.write ? "wrote" : "read");
}

// The accesses noted for the operation st gets now: each checked against
// recent work of other streams (of the same capture, or eager) that st's
// clock is not ordered after, then remembered.
void check_races(Stream *st)
{
    std::vector<Access> acc;
    acc.swap(next_accesses);
    if (acc.empty())
        return;
    State &s = state();
    int id = stream_number(st);
    merge_clock(st->clock, s.host_clock);
    if (st->clock.size() <= (size_t)id)
        st->clock.resize((size_t)id + 1, 0);
    long long seq = ++st->clock[(size_t)id];
    const Graph *g = st->capture;
    for (const State::Touched &t : s.touched) {
        if (t.stream == id || t.graph != g ||
            ((size_t)t.stream < st->clock.size() && st->clock[(size_t)t.stream] >= t.seq))
            continue;
        for (const Access &a : acc)
            if ((a.write || t.write) && a.lo < t.hi && t.lo < a.hi)
                report_race(t, a, id);
    }
    for (const Access &a : acc) {
        s.touched.push_back(State::Touched{a.lo, a.hi, a.write, id, seq, g});
    }
    while (s.touched.size() > 4096)
        s.touched.pop_front();
}

// Work for a stream: queued, or recorded into the graph it captures. Logged
// work (bp_emu::logged) is a node that waits for the stream's frontier.
void submit(Stream *st, std::function<void()> op)
{
    check_races(st);
    bool work = bp_emu::take_work_mark();
    if (st->capture) {
        Graph *g = st->capture;
        g->op_node.push_back(work ? g->nodes : -1);
        g->op_deps.push_back(work ? st->capture_frontier : Nodes());
        if (work)
            st->capture_frontier = Nodes{g->nodes++};
    }
    if (!st->capture && work) {
        long long node = next_node++;
        queue_node(st, std::move(op), node, st->frontier);
        st->frontier = Nodes{node};
        return;
    }
    if (st->capture) {
        state().counters.captured_work++;
        st->capture->ops.push_back(std::move(op));
        st->capture_ops++;
        if (st->capture_origin != st)
            st->capture_joined = false; // new work on a fork: to be joined again
    } else {
        st->pending.push_back(std::move(op));
    }
}

// Work made anew at each launch of a graph that captures it (and at once
// when st is not captured): `make` returns the operation for the stream it
// is launched into.
__attribute__((unused)) // fake_nccl.cpp's
void submit_made_at_launch(Stream *st, std::function<std::function<void()>(Stream *)> make)
{
    if (!st->capture) {
        submit(st, make(st));
        return;
    }
    st->capture->made_at_launch[st->capture->ops.size()] = std::move(make);
    submit(st, std::function<void()>());
}

// What a graph's launch leaves to do once the runtime's lock is released
// (fake_nccl.cpp: waiting until every rank's part of a collective is queued).
thread_local std::vector<std::function<void()>> after_launch;

// The allocation of any device holding [p, p + bytes), or -1.
int device_of(const void *p, size_t bytes)
{
    State &s = state();
    const char *c = static_cast<const char *>(p);
    for (int d = 0; d < kDevices; d++) {
        auto it = s.device_mem[d].upper_bound(const_cast<char *>(c));
        if (it == s.device_mem[d].begin())
            continue;
        --it;
        if (c >= it->first && bytes <= it->second && (size_t)(c - it->first) <= it->second - bytes)
            return d;
    }
    return -1;
}

bool is_pinned(const void *p)
{
    State &s = state();
    const char *c = static_cast<const char *>(p);
    auto it = s.pinned.upper_bound(const_cast<char *>(c));
    if (it == s.pinned.begin())
        return false;
    --it;
    return (size_t)(c - it->first) < it->second;
}

void run_until(Stream *st, const Event *e)
{
    while (!st->pending.empty() && !(e && e->done)) {
        std::function<void()> op = std::move(st->pending.front());
        st->pending.pop_front();
        if (state().sticky != cudaSuccess)
            continue; // a faulted context runs nothing more
        try {
            op();
        } catch (...) {
            device_fault(cudaErrorLaunchFailure); // an emulated kernel's own check failed
        }
    }
}

// The end of a call that waited for the device: the sticky error of a
// fault that happened meanwhile, or cudaSuccess.
cudaError_t after_wait()
{
    return state().sticky != cudaSuccess ? fail(state().sticky) : cudaSuccess;
}

void host_waited_for_all();

void run_all()
{
    host_waited_for_all();
    State &s = state();
    for (Stream *st : s.streams)
        run_until(st, nullptr);
    for (Stream &st : s.default_stream)
        run_until(&st, nullptr);
}

// The stream an operation goes to: a live stream, or the current device's
// default stream for 0.
Stream *stream_of(cudaStream_t h)
{
    State &s = state();
    if (h == nullptr || h == cudaStreamLegacy || h == cudaStreamPerThread)
        return &s.default_stream[current_device];
    Stream *st = reinterpret_cast<Stream *>(h);
    return s.streams.count(st) ? st : nullptr;
}

// Work given to the legacy default stream while capture forbids it (it
// would wait for the capturing stream): cudaErrorStreamCaptureImplicit.
bool legacy_in_capture(cudaStream_t h)
{
    return (h == nullptr || h == cudaStreamLegacy) && unsafe_forbidden();
}

float round_mantissa(float x, int bits)
{
    uint32_t u;
    std::memcpy(&u, &x, 4);
    int drop = 23 - bits;
    uint32_t half = (1u << (drop - 1)) - 1 + ((u >> drop) & 1u);
    u = (u + half) & ~((1u << drop) - 1);
    std::memcpy(&x, &u, 4);
    return x;
}

CBLAS_TRANSPOSE cblas_op(cublasOperation_t op)
{
    return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans;
}

// cuBLAS's argument checks, and the operands inside device memory.
cublasStatus_t check_gemm(Handle *h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                          int k, const void *a, int lda, const void *b, int ldb, const void *c,
                          int ldc, size_t es, Stream **out, size_t es_c = 0)
{
    State &s = state();
    if (!s.handles.count(h))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (h->device != current_device)
        return CUBLAS_STATUS_EXECUTION_FAILED; // a handle of another device
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta == CUBLAS_OP_N ? m : k) ||
        ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    int a_cols = ta == CUBLAS_OP_N ? k : m, a_rows = ta == CUBLAS_OP_N ? m : k;
    int b_cols = tb == CUBLAS_OP_N ? n : k, b_rows = tb == CUBLAS_OP_N ? k : n;
    if (k > 0 && (device_of(a, ((size_t)lda * (a_cols - 1) + a_rows) * es) != current_device ||
                  device_of(b, ((size_t)ldb * (b_cols - 1) + b_rows) * es) != current_device))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (device_of(c, ((size_t)ldc * (n - 1) + m) * (es_c ? es_c : es)) != current_device)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (h->stream == nullptr && unsafe_forbidden()) { // the legacy stream during a capture
        forbidden_in_capture(cudaErrorStreamCaptureImplicit);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    *out = h->stream ? h->stream : &s.default_stream[h->device];
    if (!(*out)->capture)
        s.counters.blas_calls++;
    if (k > 0) {
        bp_emu::note_access(a, ((size_t)lda * (a_cols - 1) + a_rows) * es, false);
        bp_emu::note_access(b, ((size_t)ldb * (b_cols - 1) + b_rows) * es, false);
    }
    bp_emu::note_access(c, ((size_t)ldc * (n - 1) + m) * (es_c ? es_c : es), true);
    return CUBLAS_STATUS_SUCCESS;
}

// A 16-bit value (CUDA_R_16BF or CUDA_R_16F) as float32, and float32 rounded
// to the type, to nearest even: bfloat16 by round_mantissa, half by the
// compiler's _Float16 (not the library's kernels/bp_mixed.h, so that the two
// are checked against each other).
float from_16(cudaDataType t, uint16_t h)
{
    if (t == CUDA_R_16BF) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
    _Float16 x;
    std::memcpy(&x, &h, 2);
    return (float)x;
}

uint16_t to_16(cudaDataType t, float f)
{
    if (t == CUDA_R_16BF) {
        if (f != f)
            return 0x7FC0;
        float r = round_mantissa(f, 7);
        uint32_t u;
        std::memcpy(&u, &r, 4);
        return (uint16_t)(u >> 16);
    }
    _Float16 x = (_Float16)f;
    uint16_t h;
    std::memcpy(&h, &x, 2);
    return h;
}

// cublasGemmEx with 16-bit A and B (see the file's comment for what is taken).
cublasStatus_t gemm_ex_half(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *a, cudaDataType a_type,
                            int lda, const void *b, cudaDataType b_type, int ldb, const void *beta,
                            void *c, cudaDataType c_type, int ldc, cublasComputeType_t compute)
{
    if (b_type != a_type || (c_type != a_type && c_type != CUDA_R_32F) ||
        compute != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    size_t es_c = c_type == CUDA_R_32F ? sizeof(float) : sizeof(uint16_t);
    Stream *st = nullptr;
    cublasStatus_t s = check_gemm(reinterpret_cast<Handle *>(handle), ta, tb, m, n, k, a, lda, b,
                                  ldb, c, ldc, sizeof(uint16_t), &st, es_c);
    if (s != CUBLAS_STATUS_SUCCESS || st == nullptr)
        return s;
    float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    const uint16_t *ha = static_cast<const uint16_t *>(a), *hb = static_cast<const uint16_t *>(b);
    size_t na = (size_t)lda * (ta == CUBLAS_OP_N ? k : m),
           nb = (size_t)ldb * (tb == CUBLAS_OP_N ? n : k), nc = (size_t)ldc * n;
    // Declared bytes: A and B 16-bit, C written in its type (and read when beta != 0).
    bp_emu_work work = bp_emu::product("cublasGemmEx 16-bit", m, n, k, BP_EMU_MATH_BF16, 2);
    work.bytes = 2.0 * ((double)m * k + (double)k * n) +
                 (double)es_c * (double)m * n * (be != 0.0f ? 2.0 : 1.0);
    submit(st, bp_emu::logged(work, [=] {
               std::vector<float> fa(na), fb(nb), fc;
               for (size_t i = 0; i < na; i++)
                   fa[i] = from_16(a_type, ha[i]);
               for (size_t i = 0; i < nb; i++)
                   fb[i] = from_16(a_type, hb[i]);
               float *out = static_cast<float *>(c);
               uint16_t *hc = static_cast<uint16_t *>(c);
               if (c_type != CUDA_R_32F) {
                   fc.resize(nc);
                   for (size_t i = 0; i < nc; i++)
                       fc[i] = be != 0.0f ? from_16(c_type, hc[i]) : 0.0f;
                   out = fc.data();
               }
               cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, al, fa.data(), lda,
                           fb.data(), ldb, be, out, ldc);
               if (c_type != CUDA_R_32F) /* the m rows of each column, not the padding to ldc */
                   for (size_t i = 0; i < nc; i++)
                       if (i % (size_t)ldc < (size_t)m)
                           hc[i] = to_16(c_type, fc[i]);
           }));
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

extern "C" {

// ---- the hook of cuda_runtime.h's kernel emulation ----------------------

void bp_emu_note_access(const void *p, int write)
{
    LOCKED_CALL();
    if (p != nullptr && device_of(p, 1) >= 0)
        bp_emu::note_access(p, 1, write != 0);
}

int bp_emu_enqueue(void *stream, void (*run)(void *), void (*release)(void *), void *arg)
{
    std::vector<Access> accesses;
    accesses.swap(next_accesses); // the launch's, noted just before
    API_CALL();
    if (legacy_in_capture(static_cast<cudaStream_t>(stream)))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Stream *st = stream_of(static_cast<cudaStream_t>(stream));
    if (st == nullptr || st->device != current_device)
        return fail(cudaErrorInvalidResourceHandle);
    std::shared_ptr<void> job(arg, release);
    if (!st->capture)
        state().counters.kernel_launches++;
    next_accesses.swap(accesses);
    submit(st, bp_emu::logged(bp_emu::take_launch_description(), [run, job] { run(job.get()); }));
    return cudaSuccess;
}

// ---- devices and errors ----------------------------------------------------

cudaError_t cudaGetDeviceCount(int *count)
{
    API_CALL();
    *count = visible_devices();
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    API_CALL();
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    API_CALL();
    if (device < 0 || device >= visible_devices())
        return fail(cudaErrorInvalidDevice);
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    API_CALL();
    if (device < 0 || device >= visible_devices())
        return fail(cudaErrorInvalidDevice);
    std::memset(prop, 0, sizeof *prop);
    std::snprintf(prop->name, sizeof prop->name, "backprop emulated GPU %d", device);
    prop->totalGlobalMem = kDeviceMemory;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 4;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    API_CALL();
    *total = kDeviceMemory;
    *free_bytes = kDeviceMemory - state().device_used[current_device];
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    API_CALL(); // a sticky error is returned, and stays
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorStreamCaptureIsolation: return "cudaErrorStreamCaptureIsolation";
    case cudaErrorCapturedEvent: return "cudaErrorCapturedEvent";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureIsolation:
        return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureUnjoined:
        return "capture sequence contains a fork that was not joined to the primary stream";
    case cudaErrorCapturedEvent:
        return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error";
    }
}

// ---- memory ------------------------------------------------------------------

cudaError_t cudaMalloc(void **ptr, size_t bytes)
{
    API_CALL();
    if (unsafe_forbidden())
        return forbidden_in_capture();
    State &s = state();
    s.counters.allocations++;
    size_t rounded = (std::max(bytes, (size_t)1) + 255) & ~(size_t)255;
    if (bytes > kDeviceMemory - s.device_used[current_device])
        return fail(cudaErrorMemoryAllocation);
    char *p = static_cast<char *>(std::aligned_alloc(256, rounded));
    if (p == nullptr)
        return fail(cudaErrorMemoryAllocation);
    if (!bp_emu::record_only()) // (recording only: the pages stay untouched)
        std::memset(p, 0xCD, rounded);
    s.device_mem[current_device][p] = bytes;
    s.device_used[current_device] += bytes;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr)
{
    API_CALL_ALWAYS();
    if (unsafe_forbidden())
        return forbidden_in_capture();
    State &s = state();
    s.counters.host_syncs++;
    run_all(); // cudaFree waits for the device
    if (ptr == nullptr)
        return cudaSuccess;
    for (int d = 0; d < kDevices; d++) {
        auto it = s.device_mem[d].find(static_cast<char *>(ptr));
        if (it != s.device_mem[d].end()) {
            s.device_used[d] -= it->second;
            s.device_mem[d].erase(it);
            std::free(ptr);
            return cudaSuccess;
        }
    }
    return fail(cudaErrorInvalidDevicePointer);
}

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags)
{
    (void)flags;
    API_CALL();
    if (unsafe_forbidden())
        return forbidden_in_capture();
    state().counters.allocations++;
    char *p = static_cast<char *>(std::malloc(std::max(bytes, (size_t)1)));
    if (p == nullptr)
        return fail(cudaErrorMemoryAllocation);
    state().pinned[p] = bytes;
    state().counters.pinned_bytes += (long long)bytes;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr)
{
    API_CALL_ALWAYS();
    if (unsafe_forbidden())
        return forbidden_in_capture();
    state().counters.host_syncs++;
    run_all();
    auto it = state().pinned.find(static_cast<char *>(ptr));
    if (it == state().pinned.end())
        return fail(cudaErrorInvalidValue);
    state().counters.pinned_bytes -= (long long)it->second;
    state().pinned.erase(it);
    std::free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    API_CALL();
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Stream *st = stream_of(stream);
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (bytes == 0)
        return cudaSuccess;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyHostToHost || kind == cudaMemcpyDefault)
        return fail(cudaErrorInvalidValue); // the backend names every direction
    if ((dst_dev && device_of(dst, bytes) < 0) || (src_dev && device_of(src, bytes) < 0))
        return fail(cudaErrorInvalidValue);
    bool pageable = (kind == cudaMemcpyHostToDevice && !is_pinned(src)) ||
                    (kind == cudaMemcpyDeviceToHost && !is_pinned(dst));
    if (pageable && (st->capture || unsafe_forbidden()))
        return forbidden_in_capture(); // a graph cannot hold a pageable copy
    if (!st->capture) {
        State &s = state();
        s.counters.h2d_copies += kind == cudaMemcpyHostToDevice;
        s.counters.d2h_copies += kind == cudaMemcpyDeviceToHost;
        s.counters.host_syncs += pageable; // the host waits for (or may wait for) the copy
    }
    if (src_dev)
        bp_emu::note_access(src, bytes, false);
    if (dst_dev)
        bp_emu::note_access(dst, bytes, true);
    if (bp_emu::record_only() && kind != cudaMemcpyDeviceToHost) {
        submit(st, bp_emu::logged(bp_emu::copy("cudaMemcpyAsync", bytes), [] {}));
        return cudaSuccess;
    }
    if (kind == cudaMemcpyHostToDevice && pageable) {
        // Pageable source: its bytes are taken now; the write is queued.
        auto copy = std::make_shared<std::vector<char>>(static_cast<const char *>(src),
                                                        static_cast<const char *>(src) + bytes);
        submit(st, bp_emu::logged(bp_emu::copy("cudaMemcpyAsync", bytes),
                                  [dst, copy] { std::memcpy(dst, copy->data(), copy->size()); }));
        return cudaSuccess;
    }
    if (kind == cudaMemcpyDeviceToHost && pageable) {
        // Pageable destination: returns once the copy is done.
        check_races(st);
        run_until(st, nullptr);
        host_waited_for(st);
        if (state().sticky != cudaSuccess)
            return after_wait();
        std::memcpy(dst, src, bytes);
        return cudaSuccess;
    }
    submit(st, bp_emu::logged(bp_emu::copy("cudaMemcpyAsync", bytes),
                              [dst, src, bytes] { std::memmove(dst, src, bytes); }));
    return cudaSuccess;
}

// The synchronous copy: on the legacy stream, waits for the device.
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    API_CALL();
    if (unsafe_forbidden())
        return forbidden_in_capture();
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
    if (e != cudaSuccess)
        return e;
    state().counters.host_syncs++;
    run_all();
    return after_wait();
}

cudaError_t cudaDeviceSynchronize(void)
{
    API_CALL();
    if (unsafe_forbidden())
        return forbidden_in_capture();
    state().counters.host_syncs++;
    run_all();
    return after_wait();
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream)
{
    API_CALL();
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Stream *st = stream_of(stream);
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (bytes == 0)
        return cudaSuccess;
    if (device_of(dst, bytes) < 0)
        return fail(cudaErrorInvalidValue);
    bp_emu::note_access(dst, bytes, true);
    submit(st, bp_emu::logged(bp_emu::copy("cudaMemsetAsync", bytes),
                              [dst, value, bytes] { std::memset(dst, value, bytes); }));
    return cudaSuccess;
}

// ---- streams and events ---------------------------------------------------

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    (void)flags;
    API_CALL();
    Stream *st = new Stream{current_device, {}};
    state().streams.insert(st);
    *stream = reinterpret_cast<cudaStream_t>(st);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    API_CALL_ALWAYS();
    Stream *st = stream_of(stream);
    if (st == nullptr || stream == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (st->capture)
        return forbidden_in_capture();
    run_until(st, nullptr);
    state().streams.erase(st);
    delete st;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    API_CALL();
    Stream *st = stream_of(stream);
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (st->capture || unsafe_forbidden())
        return forbidden_in_capture(cudaErrorStreamCaptureUnsupported, st);
    state().counters.host_syncs++;
    run_until(st, nullptr);
    host_waited_for(st);
    return after_wait();
}

cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    API_CALL();
    Stream *st = stream_of(stream);
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (st->capture || unsafe_forbidden())
        return forbidden_in_capture(cudaErrorStreamCaptureUnsupported, st);
    return st->pending.empty() ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status)
{
    API_CALL();
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Stream *st = stream_of(stream);
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    *status = st->capture == nullptr                ? cudaStreamCaptureStatusNone
              : st->capture_origin->capture_invalid ? cudaStreamCaptureStatusInvalidated
                                                    : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int *device)
{
    API_CALL();
    Stream *st = stream_of(stream);
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    *device = st->device;
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *ptr)
{
    API_CALL();
    std::memset(attr, 0, sizeof *attr);
    int d = device_of(ptr, 1);
    attr->type = d >= 0           ? cudaMemoryTypeDevice
                 : is_pinned(ptr) ? cudaMemoryTypeHost
                                  : cudaMemoryTypeUnregistered;
    attr->device = d >= 0 ? d : -2;
    attr->devicePointer = d >= 0 ? const_cast<void *>(ptr) : nullptr;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    (void)flags;
    API_CALL();
    Event *e = new Event;
    state().events.insert(e);
    *event = reinterpret_cast<cudaEvent_t>(e);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    API_CALL_ALWAYS();
    Event *e = reinterpret_cast<Event *>(event);
    if (state().events.erase(e) == 0)
        return fail(cudaErrorInvalidResourceHandle);
    if (e->stream && !e->done) // destroying a pending event is allowed; keep the marker valid
        run_until(e->stream, e);
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    API_CALL();
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Event *e = reinterpret_cast<Event *>(event);
    Stream *st = stream_of(stream);
    if (!state().events.count(e) || st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (st->capture) { // a node of the graph; waiting for it is then an error
        // Captured without cudaEventRecordExternal, a record is only an
        // edge of the graph (the graph's operations already run in an
        // order that respects it): a launch does not record the event.
        // Had the launch's copy set `done`, a replay still queued would
        // satisfy a wait for a later, eager recording of the same event,
        // ordering nothing (cudaStreamWaitEvent waits for the most recent
        // recording at the time of the call).
        e->captured = st->capture;
        e->captured_on = st;
        e->captured_at = st->capture_ops;
        e->frontier = st->capture_frontier;
        e->clock = st->clock;
        return cudaSuccess;
    }
    if (e->stream && !e->done)
        run_until(e->stream, e); // an earlier recording still pending: let it land first
    e->stream = st;
    e->done = false;
    e->captured = nullptr;
    e->captured_on = nullptr;
    e->frontier = st->frontier;
    e->clock = st->clock;
    st->pending.push_back([e] { e->done = true; });
    return cudaSuccess;
}

namespace {

// Whether e was last recorded into a capture that is still under way.
bool in_active_capture(const Event *e)
{
    return e->captured && state().streams.count(e->captured_on) &&
           e->captured_on->capture == e->captured;
}

// What event query and synchronise may not do: look at an event of a
// capture under way (cudaErrorCapturedEvent, whatever the mode), or run
// at all while this thread may make no unsafe call.
cudaError_t check_event_wait(const Event *e)
{
    if (in_active_capture(e))
        return forbidden_in_capture(cudaErrorCapturedEvent, e->captured_on);
    if (unsafe_forbidden())
        return forbidden_in_capture();
    return cudaSuccess;
}

} // namespace

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    API_CALL();
    Event *e = reinterpret_cast<Event *>(event);
    if (!state().events.count(e))
        return fail(cudaErrorInvalidResourceHandle);
    cudaError_t refused = check_event_wait(e);
    if (refused != cudaSuccess)
        return refused;
    state().counters.host_syncs++;
    if (e->stream && !e->done && !e->captured)
        run_until(e->stream, e);
    host_waited_for_clock(e->clock);
    return after_wait();
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
    API_CALL();
    Event *e = reinterpret_cast<Event *>(event);
    if (!state().events.count(e))
        return fail(cudaErrorInvalidResourceHandle);
    cudaError_t refused = check_event_wait(e);
    if (refused != cudaSuccess)
        return refused;
    // The emulation runs streams lazily: a query runs the work up to the
    // event, as a real GPU would have made progress while the host polled.
    if (e->stream && !e->done && !e->captured)
        run_until(e->stream, e);
    if (e->captured || e->done || e->stream == nullptr) {
        host_waited_for_clock(e->clock);
        return cudaSuccess;
    }
    return cudaErrorNotReady;
}

// A stream waits for an event: inside a capture only for an event of the
// same capture (work outside it cannot be a dependency of the graph:
// cudaErrorStreamCaptureIsolation); outside, the event's work runs first.
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    (void)flags;
    API_CALL();
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Event *e = reinterpret_cast<Event *>(event);
    Stream *st = stream_of(stream);
    if (!state().events.count(e) || st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    if (st->capture) {
        if (e->captured != st->capture && !(e->stream == nullptr && !e->captured))
            return forbidden_in_capture(cudaErrorStreamCaptureIsolation, st);
        // The graph's operations are kept in issue order, which is already
        // an order that respects this dependency. The origin waiting for a
        // fork's last work joins that fork back.
        Stream *from = e->captured_on;
        if (e->captured == st->capture && st == st->capture_origin && from != nullptr &&
            from != st && e->captured_at == from->capture_ops)
            from->capture_joined = true;
        if (e->captured == st->capture)
            merge_nodes(st->capture_frontier, e->frontier);
        merge_clock(st->clock, e->clock);
        return cudaSuccess;
    }
    if (in_active_capture(e)) { // a fork: st joins the capture the event belongs to
        Stream *origin = e->captured_on->capture_origin;
        st->capture = e->captured;
        st->capture_origin = origin;
        st->capture_mode = origin->capture_mode;
        st->capture_invalid = false;
        st->capture_joined = false;
        st->capture_ops = 0;
        st->capture_frontier = e->frontier;
        merge_clock(st->clock, e->clock);
        return cudaSuccess;
    }
    if (e->stream && !e->done && !e->captured && e->stream != st)
        run_until(e->stream, e); // the emulation orders streams by running the earlier work
    if (!e->captured)
        merge_nodes(st->frontier, e->frontier);
    merge_clock(st->clock, e->clock);
    return cudaSuccess;
}

// ---- stream capture and graphs --------------------------------------------

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    API_CALL();
    Stream *st = stream_of(stream);
    if (st == nullptr || stream == nullptr || stream == cudaStreamLegacy || st->capture || capturing)
        return fail(cudaErrorInvalidValue);
    if (unsafe_forbidden())
        return forbidden_in_capture();
    st->capture = new Graph;
    st->capture_invalid = false;
    st->capture_mode = mode;
    st->capture_origin = st;
    st->capture_joined = true;
    st->capture_ops = 0;
    st->capture_frontier.clear();
    capturing = st;
    state().global_captures += mode == cudaStreamCaptureModeGlobal;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    API_CALL();
    Stream *st = stream_of(stream);
    if (st == nullptr || st->capture == nullptr)
        return fail(cudaErrorInvalidValue);
    if (capturing != st && st->capture_mode != cudaStreamCaptureModeRelaxed)
        return fail(cudaErrorStreamCaptureWrongThread);
    if (st->capture_origin != st)
        return fail(cudaErrorStreamCaptureUnmatched); // a fork, not where the capture began
    Graph *g = st->capture;
    // Every fork leaves the capture; one whose last work was not joined
    // back to this stream fails it.
    bool unjoined = false;
    for (Stream *other : state().streams)
        if (other != st && other->capture == g) {
            unjoined |= !other->capture_joined;
            other->capture = nullptr;
            other->capture_origin = nullptr;
        }
    st->capture = nullptr;
    st->capture_origin = nullptr;
    capturing = nullptr;
    std::deque<State::Touched> &touched = state().touched;
    touched.erase(std::remove_if(touched.begin(), touched.end(),
                                 [g](const State::Touched &t) { return t.graph == g; }),
                  touched.end());
    state().global_captures -= st->capture_mode == cudaStreamCaptureModeGlobal;
    *graph = nullptr;
    if (st->capture_invalid || unjoined) {
        delete g;
        return fail(st->capture_invalid ? cudaErrorStreamCaptureInvalidated
                                        : cudaErrorStreamCaptureUnjoined);
    }
    state().graphs.insert(g);
    *graph = reinterpret_cast<cudaGraph_t>(g);
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    (void)flags;
    API_CALL();
    Graph *g = reinterpret_cast<Graph *>(graph);
    if (!state().graphs.count(g))
        return fail(cudaErrorInvalidValue);
    Graph *x = new Graph(*g);
    state().execs.insert(x);
    *exec = reinterpret_cast<cudaGraphExec_t>(x);
    return cudaSuccess;
}

namespace {

cudaError_t launch_locked(cudaGraphExec_t exec, cudaStream_t stream)
{
    API_CALL();
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Graph *x = reinterpret_cast<Graph *>(exec);
    Stream *st = stream_of(stream);
    if (!state().execs.count(x) || st == nullptr)
        return fail(cudaErrorInvalidValue);
    if (st->capture)
        return forbidden_in_capture(); // no graphs inside graphs here
    state().counters.graph_launches++;
    // The graph's nodes anew: its start waits for what st waits for, its
    // end (every node no other waits for) is what st's next work waits for.
    Nodes global(x->nodes, -1);
    std::vector<bool> waited_for(x->nodes, false);
    for (size_t i = 0; i < x->ops.size(); i++) {
        auto made = x->made_at_launch.find(i);
        long long local = i < x->op_node.size() ? x->op_node[i] : -1;
        if (made != x->made_at_launch.end()) {
            submit(st, made->second(st));
        } else if (local >= 0) {
            Nodes deps = x->op_deps[i].empty() ? st->frontier : Nodes();
            for (long long d : x->op_deps[i]) {
                deps.push_back(global[d]);
                waited_for[d] = true;
            }
            global[local] = next_node++;
            queue_node(st, x->ops[i], global[local], deps);
        } else if (x->ops[i]) {
            submit(st, x->ops[i]);
        }
    }
    if (x->nodes > 0) {
        st->frontier.clear();
        for (long long n = 0; n < x->nodes; n++)
            if (!waited_for[n])
                st->frontier.push_back(global[n]);
    }
    return cudaSuccess;
}

} // namespace

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    cudaError_t e = launch_locked(exec, stream);
    std::vector<std::function<void()>> then;
    then.swap(after_launch);
    for (const std::function<void()> &f : then)
        f(); // outside the lock: it may wait for other threads' launches
    return e;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    API_CALL_ALWAYS();
    Graph *x = reinterpret_cast<Graph *>(exec);
    if (state().execs.erase(x) == 0)
        return fail(cudaErrorInvalidValue);
    delete x;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    API_CALL_ALWAYS();
    Graph *g = reinterpret_cast<Graph *>(graph);
    if (state().graphs.erase(g) == 0)
        return fail(cudaErrorInvalidValue);
    delete g;
    return cudaSuccess;
}

// ---- cuBLAS ------------------------------------------------------------------

cublasStatus_t cublasCreate(cublasHandle_t *handle)
{
    BLAS_CALL();
    Handle *h = new Handle{current_device};
    state().handles.insert(h);
    *handle = reinterpret_cast<cublasHandle_t>(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle)
{
    LOCKED_CALL();
    Handle *h = reinterpret_cast<Handle *>(handle);
    if (state().handles.erase(h) == 0)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream)
{
    BLAS_CALL();
    Handle *h = reinterpret_cast<Handle *>(handle);
    if (!state().handles.count(h))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = stream ? stream_of(stream) : nullptr;
    return stream && h->stream == nullptr ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes)
{
    BLAS_CALL();
    if (!state().handles.count(reinterpret_cast<Handle *>(handle)))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes > 0 && (device_of(workspace, bytes) < 0 || (uintptr_t)workspace % 256 != 0))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    BLAS_CALL();
    Handle *h = reinterpret_cast<Handle *>(handle);
    if (!state().handles.count(h))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb,
                           int m, int n, int k, const float *alpha, const float *a, int lda,
                           const float *b, int ldb, const float *beta, float *c, int ldc)
{
    BLAS_CALL();
    Stream *st = nullptr;
    cublasStatus_t s = check_gemm(reinterpret_cast<Handle *>(handle), ta, tb, m, n, k, a, lda, b,
                                  ldb, c, ldc, sizeof(float), &st);
    if (s != CUBLAS_STATUS_SUCCESS || st == nullptr)
        return s;
    float al = *alpha, be = *beta;
    submit(st, bp_emu::logged(bp_emu::product("cublasSgemm", m, n, k, BP_EMU_MATH_FP32, 4), [=] {
               cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, al, a, lda, b, ldb,
                           be, c, ldc);
           }));
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb,
                           int m, int n, int k, const double *alpha, const double *a, int lda,
                           const double *b, int ldb, const double *beta, double *c, int ldc)
{
    BLAS_CALL();
    Stream *st = nullptr;
    cublasStatus_t s = check_gemm(reinterpret_cast<Handle *>(handle), ta, tb, m, n, k, a, lda, b,
                                  ldb, c, ldc, sizeof(double), &st);
    if (s != CUBLAS_STATUS_SUCCESS || st == nullptr)
        return s;
    double al = *alpha, be = *beta;
    submit(st, bp_emu::logged(bp_emu::product("cublasDgemm", m, n, k, BP_EMU_MATH_FP64, 8), [=] {
               cblas_dgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, al, a, lda, b, ldb,
                           be, c, ldc);
           }));
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb,
                            int m, int n, int k, const void *alpha, const void *a,
                            cudaDataType a_type, int lda, const void *b, cudaDataType b_type,
                            int ldb, const void *beta, void *c, cudaDataType c_type, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)algo;
    BLAS_CALL();
    if (a_type == CUDA_R_16BF || a_type == CUDA_R_16F)
        return gemm_ex_half(handle, ta, tb, m, n, k, alpha, a, a_type, lda, b, b_type, ldb, beta,
                            c, c_type, ldc, compute);
    if (a_type != CUDA_R_32F || b_type != CUDA_R_32F || c_type != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    int bits = compute == CUBLAS_COMPUTE_32F_FAST_TF32   ? 10
               : compute == CUBLAS_COMPUTE_32F_FAST_16BF ? 7
               : compute == CUBLAS_COMPUTE_32F           ? 23
                                                         : -1;
    if (bits < 0)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    Stream *st = nullptr;
    cublasStatus_t s = check_gemm(reinterpret_cast<Handle *>(handle), ta, tb, m, n, k, a, lda, b,
                                  ldb, c, ldc, sizeof(float), &st);
    if (s != CUBLAS_STATUS_SUCCESS || st == nullptr)
        return s;
    float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    const float *fa = static_cast<const float *>(a), *fb = static_cast<const float *>(b);
    float *fc = static_cast<float *>(c);
    size_t na = (size_t)lda * (ta == CUBLAS_OP_N ? k : m),
           nb = (size_t)ldb * (tb == CUBLAS_OP_N ? n : k);
    int math = bits == 10 ? BP_EMU_MATH_TF32 : bits == 7 ? BP_EMU_MATH_BF16 : BP_EMU_MATH_FP32;
    submit(st, bp_emu::logged(bp_emu::product("cublasGemmEx", m, n, k, math, 4), [=] {
               std::vector<float> ra(fa, fa + na), rb(fb, fb + nb);
               if (bits < 23) {
                   for (float &x : ra)
                       x = round_mantissa(x, bits);
                   for (float &x : rb)
                       x = round_mantissa(x, bits);
               }
               cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, al, ra.data(), lda,
                           rb.data(), ldb, be, fc, ldc);
           }));
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_INTERNAL_ERROR";
    }
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "an internal operation failed";
    }
}

// ---- the emulation's own hooks (emu_hooks.h) ---------------------------------

void bp_emu_counters_get(bp_emu_counters *out)
{
    LOCKED_CALL();
    *out = state().counters;
}

void bp_emu_counters_reset(void)
{
    LOCKED_CALL();
    long long pinned = state().counters.pinned_bytes; // a state, not a count
    state().counters = bp_emu_counters{};
    state().counters.pinned_bytes = pinned;
}

int bp_emu_inject_fault(void *stream)
{
    API_CALL();
    Stream *st = stream_of(static_cast<cudaStream_t>(stream));
    if (st == nullptr)
        return fail(cudaErrorInvalidResourceHandle);
    submit(st, [] { device_fault(cudaErrorIllegalAddress); });
    return cudaSuccess;
}

void bp_emu_clear_sticky_error(void)
{
    LOCKED_CALL();
    state().sticky = cudaSuccess;
    last_error = cudaSuccess;
}

} // extern "C"

// ---- for the fakes in their own files (fake_cuda_internal.h) -----------------

namespace bp_emu {

float from_16bit(cudaDataType t, uint16_t h) { return from_16(t, h); }
uint16_t to_16bit(cudaDataType t, float f) { return to_16(t, f); }

std::recursive_mutex &api_mutex() { return state().mu; }

bool context_faulted() { return state().sticky != cudaSuccess; }

int this_thread_device() { return current_device; }

int allocation_device(const void *p, size_t bytes) { return device_of(p, bytes); }

cudaError_t submit_product(cudaStream_t stream, std::function<void()> op)
{
    LOCKED_CALL();
    std::vector<Access> accesses;
    accesses.swap(next_accesses); // the product's, dropped unless it is queued
    if (legacy_in_capture(stream))
        return forbidden_in_capture(cudaErrorStreamCaptureImplicit);
    Stream *st = stream_of(stream);
    if (st == nullptr || st->device != current_device)
        return cudaErrorInvalidResourceHandle;
    next_accesses.swap(accesses);
    if (!st->capture)
        state().counters.blas_calls++;
    submit(st, std::move(op));
    return cudaSuccess;
}

float round_to_mantissa(float x, int bits) { return bits >= 23 ? x : round_mantissa(x, bits); }

void note_access(const void *p, size_t bytes, bool write)
{
    if (p != nullptr && bytes > 0)
        next_accesses.push_back(Access{(uintptr_t)p, (uintptr_t)p + bytes, write});
}

void run_all_streams()
{
    LOCKED_CALL();
    run_all();
}

} // namespace bp_emu
