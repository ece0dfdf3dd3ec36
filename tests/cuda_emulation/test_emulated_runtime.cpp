// The emulated GPU's runtime is as strict as a real one: what an H200
// refuses during stream capture, the emulation refuses too (so a capture
// the library makes is proven legal on machines without a GPU), launches
// are checked against the GPU's limits, and a kernel fault is a sticky
// error. Linked against the emulated-GPU library (tests/cuda.cmake) only.
#include <cuda_runtime.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda_emulation/emu_hooks.h"
#include "test_util.h"

namespace {

struct Fixture {
    cudaStream_t stream = nullptr, other = nullptr;
    cudaEvent_t event = nullptr;
    void *dev = nullptr;
    Fixture()
    {
        EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
        EXPECT_EQ(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), cudaSuccess);
        EXPECT_EQ(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
        EXPECT_EQ(cudaMalloc(&dev, 256), cudaSuccess);
    }
    ~Fixture()
    {
        EXPECT_EQ(cudaFree(dev), cudaSuccess);
        EXPECT_EQ(cudaEventDestroy(event), cudaSuccess);
        EXPECT_EQ(cudaStreamDestroy(other), cudaSuccess);
        EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
    }
    // Runs call inside a capture of `stream` in `mode`; returns what the
    // call returned, and in *end what ending the capture returned.
    cudaError_t in_capture(cudaStreamCaptureMode mode, const std::function<cudaError_t()> &call,
                           cudaError_t *end)
    {
        EXPECT_EQ(cudaStreamBeginCapture(stream, mode), cudaSuccess);
        EXPECT_EQ(cudaMemsetAsync(dev, 0, 256, stream), cudaSuccess); // something to capture
        cudaError_t got = call();
        cudaGraph_t graph = nullptr;
        *end = cudaStreamEndCapture(stream, &graph);
        if (graph != nullptr) {
            EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
        }
        (void)cudaGetLastError();
        return got;
    }
};

// The deliberately illegal capture: the host waits for an event while it
// captures. Real CUDA refuses the call and invalidates the capture.
TEST(EmulatedRuntime, EventSynchronizeInsideACaptureIsRejected)
{
    Fixture f;
    ASSERT_EQ(cudaEventRecord(f.event, f.other), cudaSuccess); // recorded outside the capture
    cudaError_t end = cudaSuccess;
    cudaError_t got = f.in_capture(
        cudaStreamCaptureModeThreadLocal, [&] { return cudaEventSynchronize(f.event); }, &end);
    EXPECT_EQ(got, cudaErrorStreamCaptureUnsupported) << cudaGetErrorName(got);
    EXPECT_EQ(end, cudaErrorStreamCaptureInvalidated) << cudaGetErrorName(end);
    // The stream is usable again afterwards.
    EXPECT_EQ(cudaStreamSynchronize(f.stream), cudaSuccess);
}

// An event recorded inside a capture marks a node of a graph, not work
// that will ever complete: querying or waiting for it fails with
// cudaErrorCapturedEvent even in relaxed mode, where unsafe calls are
// otherwise allowed.
TEST(EmulatedRuntime, WaitingOnAnEventRecordedInTheCaptureFails)
{
    Fixture f;
    cudaError_t end = cudaSuccess;
    cudaError_t got = f.in_capture(
        cudaStreamCaptureModeRelaxed,
        [&] {
            EXPECT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
            EXPECT_EQ(cudaEventQuery(f.event), cudaErrorCapturedEvent);
            return cudaEventSynchronize(f.event);
        },
        &end);
    EXPECT_EQ(got, cudaErrorCapturedEvent) << cudaGetErrorName(got);
    // The capture cannot wait for work recorded outside it:
    // cudaErrorStreamCaptureIsolation. (In a second capture, the first
    // being spoilt.)
    cudaError_t end2 = cudaSuccess;
    ASSERT_EQ(cudaEventRecord(f.event, f.other), cudaSuccess);
    got = f.in_capture(
        cudaStreamCaptureModeRelaxed, [&] { return cudaStreamWaitEvent(f.stream, f.event, 0); },
        &end2);
    EXPECT_EQ(got, cudaErrorStreamCaptureIsolation) << cudaGetErrorName(got);
    // Relaxed mode: allocating is allowed.
    cudaError_t end3 = cudaSuccess;
    void *p = nullptr;
    got = f.in_capture(
        cudaStreamCaptureModeRelaxed, [&] { return cudaMalloc(&p, 64); }, &end3);
    EXPECT_EQ(got, cudaSuccess);
    EXPECT_EQ(end3, cudaSuccess);
    EXPECT_EQ(cudaFree(p), cudaSuccess);
}

// Each potentially unsafe call, in the modes that forbid it (global and
// thread-local), fails and invalidates the capture.
TEST(EmulatedRuntime, UnsafeCallsInsideACaptureAreRejected)
{
    Fixture f;
    std::vector<char> host(256);
    void *pinned = nullptr;
    ASSERT_EQ(cudaHostAlloc(&pinned, 256, cudaHostAllocDefault), cudaSuccess);
    void *spare = nullptr;
    ASSERT_EQ(cudaMalloc(&spare, 64), cudaSuccess);
    struct Case {
        const char *what;
        std::function<cudaError_t()> call;
        cudaError_t expect;
    };
    std::vector<Case> cases = {
        {"cudaStreamSynchronize of another stream", [&] { return cudaStreamSynchronize(f.other); },
         cudaErrorStreamCaptureUnsupported},
        {"cudaStreamSynchronize of the capturing stream",
         [&] { return cudaStreamSynchronize(f.stream); }, cudaErrorStreamCaptureUnsupported},
        {"cudaDeviceSynchronize", [&] { return cudaDeviceSynchronize(); },
         cudaErrorStreamCaptureUnsupported},
        {"cudaEventQuery", [&] { return cudaEventQuery(f.event); },
         cudaErrorStreamCaptureUnsupported},
        {"cudaMalloc",
         [&] {
             void *p = nullptr;
             return cudaMalloc(&p, 64);
         },
         cudaErrorStreamCaptureUnsupported},
        {"cudaFree", [&] { return cudaFree(spare); }, cudaErrorStreamCaptureUnsupported},
        {"cudaMemcpy (synchronous)",
         [&] { return cudaMemcpy(f.dev, host.data(), 256, cudaMemcpyHostToDevice); },
         cudaErrorStreamCaptureUnsupported},
        {"cudaMemcpyAsync from pageable memory",
         [&] { return cudaMemcpyAsync(f.dev, host.data(), 256, cudaMemcpyHostToDevice, f.stream); },
         cudaErrorStreamCaptureUnsupported},
        {"cudaMemcpyAsync to pageable memory",
         [&] { return cudaMemcpyAsync(host.data(), f.dev, 256, cudaMemcpyDeviceToHost, f.stream); },
         cudaErrorStreamCaptureUnsupported},
        {"work on the legacy default stream",
         [&] { return cudaMemsetAsync(f.dev, 0, 256, nullptr); }, cudaErrorStreamCaptureImplicit},
        {"an event recorded on the legacy stream", [&] { return cudaEventRecord(f.event, 0); },
         cudaErrorStreamCaptureImplicit},
    };
    for (cudaStreamCaptureMode mode :
         {cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal})
        for (const Case &c : cases) {
            cudaError_t end = cudaSuccess;
            cudaError_t got = f.in_capture(mode, c.call, &end);
            EXPECT_EQ(got, c.expect)
                << c.what << " (mode " << (int)mode << "): got " << cudaGetErrorName(got);
            EXPECT_EQ(end, cudaErrorStreamCaptureInvalidated) << c.what;
        }
    // A legal capture: a pinned copy and a memset, replayed.
    cudaError_t end = cudaSuccess;
    cudaError_t got = f.in_capture(
        cudaStreamCaptureModeGlobal,
        [&] { return cudaMemcpyAsync(f.dev, pinned, 256, cudaMemcpyHostToDevice, f.stream); }, &end);
    EXPECT_EQ(got, cudaSuccess);
    EXPECT_EQ(end, cudaSuccess);
    EXPECT_EQ(cudaFree(spare), cudaSuccess);
    EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
}

// Another stream that waits for an event recorded in the capture joins it
// (a fork): its work is captured, and once an event recorded after it is
// waited for by the origin stream (the join) the capture ends and replays
// both streams' work in order.
TEST(EmulatedRuntime, AForkedStreamIsCapturedAndJoinedBack)
{
    Fixture f;
    cudaEvent_t back = nullptr;
    ASSERT_EQ(cudaEventCreateWithFlags(&back, cudaEventDisableTiming), cudaSuccess);
    std::vector<unsigned char> host(256, 0xAB), got(256, 0);
    void *pinned = nullptr;
    ASSERT_EQ(cudaHostAlloc(&pinned, 256, cudaHostAllocDefault), cudaSuccess);
    std::memcpy(pinned, host.data(), 256);
    ASSERT_EQ(cudaStreamBeginCapture(f.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(f.dev, 0, 256, f.stream), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(f.other, f.event, 0), cudaSuccess); // the fork
    enum cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    ASSERT_EQ(cudaStreamIsCapturing(f.other, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusActive);
    ASSERT_EQ(cudaMemcpyAsync(f.dev, pinned, 256, cudaMemcpyHostToDevice, f.other), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(back, f.other), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(f.stream, back, 0), cudaSuccess); // the join
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(f.stream, &graph), cudaSuccess);
    ASSERT_EQ(cudaStreamIsCapturing(f.other, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusNone); // the fork left with the capture
    // Nothing ran yet; a replay does the memset, then the fork's copy.
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, f.stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(f.stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(got.data(), f.dev, 256, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(got, host);
    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
    EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
    EXPECT_EQ(cudaEventDestroy(back), cudaSuccess);
}

// A record captured without cudaEventRecordExternal is an edge of the
// graph, not an event node: a launch does not record the event. A wait
// for a later, eager recording of it is a wait for the work before that
// recording, even while a replay of the capture is still queued ahead of
// it (the data-parallel step's eager warm-up between replays relies on
// it: src/parallel/nccl.c reuses its events in and out of captures).
TEST(EmulatedRuntime, AReplayDoesNotRecordTheEventsOfItsCapture)
{
    Fixture f;
    unsigned char *in = nullptr, *out = nullptr;
    ASSERT_EQ(cudaHostAlloc((void **)&in, 256, cudaHostAllocDefault), cudaSuccess);
    ASSERT_EQ(cudaHostAlloc((void **)&out, 256, cudaHostAllocDefault), cudaSuccess);
    std::memset(in, 0xAB, 256);
    std::memset(out, 0, 256);
    ASSERT_EQ(cudaStreamBeginCapture(f.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(f.dev, 0, 256, f.stream), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(f.stream, &graph), cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, f.stream), cudaSuccess); // queued, not run yet
    ASSERT_EQ(cudaMemcpyAsync(f.dev, in, 256, cudaMemcpyHostToDevice, f.stream), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess); // after the copy
    ASSERT_EQ(cudaStreamWaitEvent(f.other, f.event, 0), cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(out, f.dev, 256, cudaMemcpyDeviceToHost, f.other), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(f.other), cudaSuccess);
    EXPECT_EQ(std::vector<unsigned char>(out, out + 256), std::vector<unsigned char>(256, 0xAB))
        << "the wait was satisfied by the replay, before the copy it was recorded after";
    EXPECT_EQ(cudaStreamSynchronize(f.stream), cudaSuccess);
    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
    EXPECT_EQ(cudaFreeHost(in), cudaSuccess);
    EXPECT_EQ(cudaFreeHost(out), cudaSuccess);
}

// A fork whose last work is not joined back fails the capture
// (cudaErrorStreamCaptureUnjoined), and the fork stops capturing.
TEST(EmulatedRuntime, AForkNotJoinedBackFailsTheCapture)
{
    Fixture f;
    ASSERT_EQ(cudaStreamBeginCapture(f.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(f.other, f.event, 0), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(f.dev, 0, 256, f.other), cudaSuccess);
    cudaGraph_t graph = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(f.stream, &graph), cudaErrorStreamCaptureUnjoined);
    EXPECT_EQ(graph, nullptr);
    (void)cudaGetLastError();
    EXPECT_EQ(cudaStreamSynchronize(f.other), cudaSuccess); // an ordinary stream again
}

// Work on one stream that touches memory another stream wrote, with nothing
// ordering the two, is a race (emu_hooks.h: races), eagerly and inside a
// capture; an event between them (or a host wait) orders them, and two
// streams reading the same memory do not race.
TEST(EmulatedRuntime, UnorderedWorkOfTwoStreamsOnTheSameMemoryIsARace)
{
    Fixture f;
    void *copy = nullptr;
    ASSERT_EQ(cudaMalloc(&copy, 256), cudaSuccess);
    long long unordered = 0, ordered = 0, both_read = 0, captured = 0;
    auto write_then_read = [&](bool event) {
        EXPECT_EQ(cudaMemsetAsync(f.dev, 1, 256, f.stream), cudaSuccess);
        if (event) {
            EXPECT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
            EXPECT_EQ(cudaStreamWaitEvent(f.other, f.event, 0), cudaSuccess);
        }
        EXPECT_EQ(cudaMemcpyAsync(copy, f.dev, 128, cudaMemcpyDeviceToDevice, f.other), cudaSuccess);
    };
    bp_emu_counters c0, c1;
    bp_emu_counters_get(&c0);
    write_then_read(false);
    bp_emu_counters_get(&c1);
    unordered = c1.races - c0.races;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    bp_emu_counters_get(&c0);
    write_then_read(true);
    bp_emu_counters_get(&c1);
    ordered = c1.races - c0.races;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    bp_emu_counters_get(&c0);
    EXPECT_EQ(cudaMemcpyAsync(copy, f.dev, 64, cudaMemcpyDeviceToDevice, f.stream), cudaSuccess);
    EXPECT_EQ(cudaMemcpyAsync((char *)copy + 128, f.dev, 64, cudaMemcpyDeviceToDevice, f.other),
              cudaSuccess);
    bp_emu_counters_get(&c1);
    both_read = c1.races - c0.races;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    // In a capture: the fork writes, the origin reads after the join (no
    // race), then writes again with the fork's write not joined (a race).
    bp_emu_counters_get(&c0);
    ASSERT_EQ(cudaStreamBeginCapture(f.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(f.other, f.event, 0), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(copy, 0, 64, f.other), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(f.dev, 0, 64, f.stream), cudaSuccess); // other memory: no race
    ASSERT_EQ(cudaMemsetAsync(copy, 2, 64, f.stream), cudaSuccess);  // the fork's: a race
    ASSERT_EQ(cudaEventRecord(f.event, f.other), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(f.stream, f.event, 0), cudaSuccess);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(f.stream, &graph), cudaSuccess);
    bp_emu_counters_get(&c1);
    captured = c1.races - c0.races;
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
    EXPECT_EQ(unordered, 1);
    EXPECT_EQ(ordered, 0);
    EXPECT_EQ(both_read, 0);
    EXPECT_EQ(captured, 1);
    EXPECT_EQ(cudaFree(copy), cudaSuccess);
}

// Captured work is not work the host can wait for: on a forked stream, a
// host wait (stream synchronise, query) is refused and spoils the capture,
// and an event recorded on it cannot be queried or synchronised
// (cudaErrorCapturedEvent), even in relaxed mode. The data-parallel step
// must not do either inside a graph (src/parallel/nccl.c).
TEST(EmulatedRuntime, HostWaitsOnAForksCapturedWorkAreRefused)
{
    Fixture f;
    cudaEvent_t done = nullptr;
    ASSERT_EQ(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), cudaSuccess);
    struct Case {
        const char *what;
        cudaStreamCaptureMode mode;
        std::function<cudaError_t()> call;
        cudaError_t expect;
    } cases[] = {
        {"cudaStreamSynchronize of the fork", cudaStreamCaptureModeRelaxed,
         [&] { return cudaStreamSynchronize(f.other); }, cudaErrorStreamCaptureUnsupported},
        {"cudaStreamQuery of the fork", cudaStreamCaptureModeRelaxed,
         [&] { return cudaStreamQuery(f.other); }, cudaErrorStreamCaptureUnsupported},
        {"cudaEventQuery of the fork's event", cudaStreamCaptureModeRelaxed,
         [&] { return cudaEventQuery(done); }, cudaErrorCapturedEvent},
        {"cudaEventSynchronize of the fork's event", cudaStreamCaptureModeRelaxed,
         [&] { return cudaEventSynchronize(done); }, cudaErrorCapturedEvent},
        {"cudaEventQuery of the fork's event, thread-local mode", cudaStreamCaptureModeThreadLocal,
         [&] { return cudaEventQuery(done); }, cudaErrorCapturedEvent},
    };
    for (const Case &c : cases) {
        ASSERT_EQ(cudaStreamBeginCapture(f.stream, c.mode), cudaSuccess);
        ASSERT_EQ(cudaEventRecord(f.event, f.stream), cudaSuccess);
        ASSERT_EQ(cudaStreamWaitEvent(f.other, f.event, 0), cudaSuccess);
        ASSERT_EQ(cudaMemsetAsync(f.dev, 0, 256, f.other), cudaSuccess);
        ASSERT_EQ(cudaEventRecord(done, f.other), cudaSuccess);
        cudaError_t got = c.call();
        EXPECT_EQ(got, c.expect) << c.what << ": " << cudaGetErrorName(got);
        ASSERT_EQ(cudaStreamWaitEvent(f.stream, done, 0), cudaSuccess); // joined
        cudaGraph_t graph = nullptr;
        EXPECT_EQ(cudaStreamEndCapture(f.stream, &graph), cudaErrorStreamCaptureInvalidated)
            << c.what;
        (void)cudaGetLastError();
    }
    EXPECT_EQ(cudaEventDestroy(done), cudaSuccess);
}

// A kernel that faults poisons the context: the call that waits for it
// and every call after it return the sticky error; the library reports it
// as a CUDA failure naming the error.
TEST(EmulatedRuntime, AKernelFaultIsStickyAndReported)
{
    bpt::Spec s;
    s.sizes = {6, 5, 3};
    s.acts = {BP_ACT_RELU, BP_ACT_IDENTITY};
    s.loss = BP_LOSS_CROSS_ENTROPY;
    s.backend = BP_BACKEND_CUDA;
    s.max_batch = 4;
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    {
        bp_network_config cfg = s.config();
        cfg.cuda_stream = stream;
        bp_network *raw = nullptr;
        ASSERT_EQ(bp_network_create(&cfg, &raw), BP_OK) << bp_last_error();
        bpt::Net net(raw);
        bpt::Batch b = bpt::random_batch(s, 4, 3);
        bp_optimizer opt = bpt::sgd();
        double loss = 0;
        ASSERT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.targets(), 4, &opt, &loss), BP_OK);
        ASSERT_EQ(bp_emu_inject_fault(stream), cudaSuccess);
        // Enqueueing still works (nothing has run yet) until something waits.
        bp_status st = bpt::sgd_step(net.get(), b.x.data(), b.targets(), 4, &opt, &loss);
        EXPECT_EQ(st, BP_ERR_CUDA);
        std::string msg = bp_last_error();
        EXPECT_NE(msg.find("illegal memory access"), std::string::npos) << msg;
        EXPECT_EQ(bpt::sgd_step(net.get(), b.x.data(), b.targets(), 4, &opt, nullptr), BP_ERR_CUDA);
        EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorIllegalAddress);
        EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress); // and it stays
        EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
        bp_emu_clear_sticky_error(); // the emulation's "new process", to clean up
    }
    EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

} // namespace
