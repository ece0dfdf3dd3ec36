// fake_nccl.cpp — the NCCL calls src/parallel/nccl.c makes, on the emulated
// GPU of fake_cuda.cpp, so that the NCCL engine runs on machines without a
// GPU: ranks are the two emulated devices of one process, each driven by a
// thread of its own (tests/test_dist_nccl_emulated.cpp).
//
// It includes fake_cuda.cpp (its streams and events are what a collective
// orders against) and adds the two runtime calls only the engine needs,
// cudaStreamWaitEvent and cudaEventQuery. Build it INSTEAD of fake_cuda.cpp.
//
// How a collective runs. Each rank's call queues an operation on its
// stream (and, like a launch, returns at once once every rank of the clique
// has queued its part: the host calls meet at a barrier, which a rank that
// never comes times out). When any stream reaches its part (the fake runs
// streams lazily, in whichever thread waits), the part runs the other
// ranks' streams up to theirs; the last part to arrive combines the
// buffers in rank order — so the result is the same on every rank — and
// writes every rank's output.
//
// Strict where NCCL is: the stream must be of the communicator's device;
// a pre-multiplied sum operator must belong to the communicator (its scalar
// a host value, or device memory of its device read when the collective
// runs: ncclScalarDevice); group calls must nest.
//
// Collectives issued into a stream capture are recorded into the graph
// (as NCCL records them) and queued anew at every launch of it: each
// launch waits, like an eager call, until every rank has launched its part. Failures are
// asynchronous as on a GPU: a rank that does not come to a collective within BP_EMU_NCCL_TIMEOUT_S
// seconds (default 30), or bp_emu_nccl_inject_error(), makes every communicator of the clique
// report ncclRemoteError / ncclSystemError from ncclCommGetAsyncError, and its collectives then
// complete without moving data, as after a real network failure.
#include "fake_cuda.cpp"

#include <nccl.h>

#include <chrono>
#include <memory>
#include <condition_variable>
#include <string>
#include <vector>

namespace {

struct Part {
    const void *send = nullptr;
    void *recv = nullptr;
    double scale = 1.0;              // pre-multiplied sum
    const void *scale_ptr = nullptr; // or its scalar in device memory, read when it runs
    Stream *stream = nullptr;
    std::shared_ptr<Event> arrived; // set when this rank's part has run
};

struct Collective {
    enum Kind { kAllReduce, kBroadcast } kind = kAllReduce;
    size_t count = 0;
    ncclDataType_t type = ncclFloat64;
    ncclRedOp_t op = ncclSum;
    bool premul = false;
    int root = 0;
    std::vector<Part> parts;
    std::vector<bool> queued;
    int n_arrived = 0;
    bool complete = false;
};

struct Clique {
    int size = 0;
    int joined = 0, alive = 0;
    std::vector<long> queued; // collectives queued per rank
    std::map<long, std::shared_ptr<Collective>> collectives;
    ncclResult_t error = ncclSuccess; // sticky, for every rank
};

struct PremulOp {
    double value = 1.0;           // ncclScalarHostImmediate
    const void *device = nullptr; // ncclScalarDevice: where the scalar is
    ncclDataType_t type = ncclFloat64;
};

struct CommImpl {
    Clique *clique;
    int rank, device;
    std::map<int, PremulOp> premul_ops; // op -> its scalar
    int next_op = ncclNumOps;
};

struct NcclState {
    std::mutex mu; // the host side: rendezvous, barriers (never held with state().mu)
    std::condition_variable cv;
    std::map<std::string, Clique *> by_id;
    std::set<CommImpl *> comms;
    // Every clique ever made: kept after its communicators are freed (work
    // still queued on a stream may refer to it), and owned here so that it
    // is freed at exit and LeakSanitizer sees it reachable until then.
    std::vector<std::unique_ptr<Clique>> cliques;
    long ids = 0;
};

thread_local int group_depth = 0; // ncclGroupStart nesting on this thread

NcclState &nccl()
{
    static NcclState s;
    return s;
}

double timeout_s()
{
    const char *v = std::getenv("BP_EMU_NCCL_TIMEOUT_S");
    double t = v ? std::atof(v) : 0;
    return t > 0 ? t : 30.0;
}

CommImpl *impl(ncclComm_t c)
{
    CommImpl *p = reinterpret_cast<CommImpl *>(c);
    return nccl().comms.count(p) ? p : nullptr;
}

size_t type_size(ncclDataType_t t)
{
    switch (t) {
    case ncclFloat32: return 4;
    case ncclFloat64: return 8;
    case ncclInt32: return 4;
    case ncclInt64: return 8;
    default: return 0;
    }
}

template <typename T> void combine(Collective &c)
{
    size_t n = c.count;
    std::vector<T> acc(n);
    int size = (int)c.parts.size();
    if (c.kind == Collective::kBroadcast) {
        std::memcpy(acc.data(), c.parts[c.root].send, n * sizeof(T));
    } else {
        for (int r = 0; r < size; r++) { // rank order: the same sum everywhere
            const T *in = static_cast<const T *>(c.parts[r].send);
            T s = c.parts[r].scale_ptr ? *static_cast<const T *>(c.parts[r].scale_ptr)
                                       : static_cast<T>(c.parts[r].scale);
            for (size_t i = 0; i < n; i++) {
                T v = c.premul ? s * in[i] : in[i];
                if (r == 0)
                    acc[i] = v;
                else if (c.op == ncclMax)
                    acc[i] = std::max(acc[i], v);
                else
                    acc[i] += v;
            }
        }
    }
    for (int r = 0; r < size; r++)
        std::memcpy(c.parts[r].recv, acc.data(), n * sizeof(T));
}

// Rank r's part of collective seq reached its stream (state().mu held).
void run_part(Clique *q, long seq, int r)
{
    std::shared_ptr<Collective> c;
    {
        std::lock_guard<std::mutex> lock(nccl().mu);
        auto it = q->collectives.find(seq);
        if (it == q->collectives.end())
            return;
        c = it->second;
    }
    c->n_arrived++;
    c->parts[r].arrived->done = true;
    // The other ranks' streams, up to their parts (queued: the barrier).
    for (int j = 0; j < (int)c->parts.size() && !c->complete; j++) {
        Part &p = c->parts[j];
        if (j != r && c->queued[j] && !p.arrived->done) {
            std::shared_ptr<Event> keep = p.arrived;
            run_until(p.stream, keep.get());
        }
    }
    if (c->complete || c->n_arrived < (int)c->parts.size())
        return;
    c->complete = true;
    ncclResult_t err;
    {
        std::lock_guard<std::mutex> lock(nccl().mu);
        err = q->error;
        q->collectives.erase(seq);
    }
    if (err != ncclSuccess)
        return; // the network failed: nothing moves
    if (c->type == ncclFloat32)
        combine<float>(*c);
    else if (c->type == ncclFloat64)
        combine<double>(*c);
    else if (c->type == ncclInt32)
        combine<int32_t>(*c);
    else
        combine<int64_t>(*c);
}

// A collective call as checked: what a part of it needs.
struct Call {
    CommImpl *ci = nullptr;
    Collective::Kind kind = Collective::kAllReduce;
    const void *send = nullptr;
    void *recv = nullptr;
    size_t count = 0;
    ncclDataType_t type = ncclFloat64;
    ncclRedOp_t op = ncclSum;
    bool premul = false;
    PremulOp scalar;
    int root = 0;
};

// NCCL's checks of a call (both locks held).
ncclResult_t check_call(ncclComm_t comm, Stream *st, Call *c)
{
    c->ci = impl(comm);
    if (c->ci == nullptr)
        return ncclInvalidArgument;
    if (st == nullptr || st->device != c->ci->device)
        return ncclInvalidUsage; // a stream of another device
    if (type_size(c->type) == 0 ||
        (c->kind == Collective::kBroadcast && (c->root < 0 || c->root >= c->ci->clique->size)))
        return ncclInvalidArgument;
    size_t bytes = c->count * type_size(c->type);
    if (c->count > 0 &&
        (device_of(c->send, bytes) != c->ci->device || device_of(c->recv, bytes) != c->ci->device))
        return ncclInvalidArgument; // buffers must be on the communicator's device
    if (c->op >= ncclNumOps) {
        auto it = c->ci->premul_ops.find((int)c->op);
        if (it == c->ci->premul_ops.end() || it->second.type != c->type)
            return ncclInvalidArgument;
        c->scalar = it->second;
        c->premul = true;
        c->op = ncclSum;
    } else if (c->op != ncclSum && c->op != ncclMax) {
        return ncclInvalidArgument; // not emulated
    }
    return ncclSuccess;
}

// This rank's part of the call, queued as its next collective, reached
// through stream st; returns its sequence number (both locks held).
long queue_part(const Call &call, Stream *st)
{
    Clique *q = call.ci->clique;
    long seq = q->queued[call.ci->rank]++;
    std::shared_ptr<Collective> &c = q->collectives[seq];
    if (!c) {
        c = std::make_shared<Collective>();
        c->kind = call.kind;
        c->count = call.count;
        c->type = call.type;
        c->op = call.op;
        c->premul = call.premul;
        c->root = call.root;
        c->parts.resize(q->size);
        c->queued.assign(q->size, false);
        for (Part &p : c->parts) {
            p.arrived = std::make_shared<Event>();
            p.arrived->done = false;
        }
    } else if (c->kind != call.kind || c->count != call.count || c->type != call.type) {
        q->error = ncclInvalidUsage; // ranks disagree on the collective
    }
    Part &p = c->parts[call.ci->rank];
    p.send = call.send;
    p.recv = call.recv;
    p.scale = call.scalar.value;
    p.scale_ptr = call.scalar.device;
    p.stream = st;
    c->queued[call.ci->rank] = true;
    p.arrived->stream = st;
    return seq;
}

// Returns once every rank has queued collective seq (or the clique failed;
// a rank that never comes fails it after the timeout).
void wait_all_queued(Clique *q, long seq)
{
    std::unique_lock<std::mutex> lock(nccl().mu);
    nccl().cv.notify_all();
    auto all_queued = [&] {
        if (q->error != ncclSuccess)
            return true;
        for (long n : q->queued)
            if (n <= seq)
                return false;
        return true;
    };
    if (!nccl().cv.wait_for(lock, std::chrono::duration<double>(timeout_s()), all_queued))
        q->error = ncclRemoteError; // a rank never came: the GPU would hang; report it
    nccl().cv.notify_all();
}

ncclResult_t enqueue(ncclComm_t comm, cudaStream_t stream, Call call)
{
    Clique *q;
    long seq = -1;
    {
        std::lock_guard<std::recursive_mutex> cuda_lock(state().mu);
        std::unique_lock<std::mutex> lock(nccl().mu);
        Stream *st = stream_of(stream);
        ncclResult_t bad = check_call(comm, st, &call);
        if (bad != ncclSuccess)
            return bad;
        q = call.ci->clique;
        int r = call.ci->rank;
        if (st->capture) { // recorded: each launch queues a part of its own
            submit_made_at_launch(st, [call, q, r](Stream *launched) -> std::function<void()> {
                std::lock_guard<std::mutex> l(nccl().mu);
                long n = queue_part(call, launched);
                after_launch.push_back([q, n] { wait_all_queued(q, n); });
                return [q, n, r] { run_part(q, n, r); };
            });
            return ncclSuccess;
        }
        seq = queue_part(call, st);
        submit(st, [q, seq, r] { run_part(q, seq, r); });
    }
    // Returns once every rank has queued its part (or the clique failed);
    // inside a group the parts are queued by this thread, so no wait.
    if (group_depth > 0) {
        std::lock_guard<std::mutex> lock(nccl().mu);
        nccl().cv.notify_all();
        return ncclSuccess;
    }
    wait_all_queued(q, seq);
    return ncclSuccess;
}

Clique *new_clique(int size)
{
    nccl().cliques.emplace_back(new Clique);
    Clique *q = nccl().cliques.back().get();
    q->size = size;
    q->queued.assign(size, 0);
    return q;
}

CommImpl *new_comm(Clique *q, int rank, int device)
{
    CommImpl *c = new CommImpl;
    c->clique = q;
    c->rank = rank;
    c->device = device;
    q->alive++;
    nccl().comms.insert(c);
    return c;
}

// Cliques are kept (a few bytes each): operations still queued on a
// stream after their communicator is gone refer to them.
void free_comm(CommImpl *c)
{
    c->clique->alive--;
    nccl().comms.erase(c);
    delete c;
}

} // namespace

extern "C" {

// cudaStreamWaitEvent and cudaEventQuery, which the engine adds to the
// calls the backend makes, are fake_cuda.cpp's (strict about capture).

// ---- NCCL -------------------------------------------------------------------

ncclResult_t ncclGetVersion(int *version)
{
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error (emulated)";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    std::memset(id, 0, sizeof *id);
    std::snprintf(id->internal, sizeof id->internal, "bp-emulated-nccl-%ld", ++nccl().ids);
    return ncclSuccess;
}

// Blocks until all nranks have joined, as NCCL does (bounded here).
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    int device = current_device;
    std::unique_lock<std::mutex> lock(nccl().mu);
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return ncclInvalidArgument;
    std::string key(id.internal, strnlen(id.internal, sizeof id.internal));
    Clique *&q = nccl().by_id[key];
    if (q == nullptr)
        q = new_clique(nranks);
    if (q->size != nranks)
        return ncclInvalidUsage;
    Clique *mine = q;
    *comm = reinterpret_cast<ncclComm_t>(new_comm(mine, rank, device));
    mine->joined++;
    nccl().cv.notify_all();
    if (!nccl().cv.wait_for(lock, std::chrono::duration<double>(timeout_s()),
                            [&] { return mine->joined >= mine->size; }))
        mine->error = ncclRemoteError;
    return ncclSuccess;
}

ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    if (ndev < 1)
        return ncclInvalidArgument;
    for (int i = 0; i < ndev; i++)
        if ((devlist ? devlist[i] : i) < 0 || (devlist ? devlist[i] : i) >= kDevices)
            return ncclInvalidArgument;
    Clique *q = new_clique(ndev);
    q->joined = ndev;
    for (int i = 0; i < ndev; i++)
        comms[i] = reinterpret_cast<ncclComm_t>(new_comm(q, i, devlist ? devlist[i] : i));
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    CommImpl *c = impl(comm);
    if (c == nullptr)
        return ncclInvalidArgument;
    free_comm(c);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    CommImpl *c = impl(comm);
    if (c == nullptr)
        return ncclInvalidArgument;
    if (c->clique->error == ncclSuccess)
        c->clique->error = ncclRemoteError; // the others see a peer gone
    nccl().cv.notify_all();
    free_comm(c);
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async_error)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    CommImpl *c = impl(comm);
    if (c == nullptr)
        return ncclInvalidArgument;
    *async_error = c->clique->error;
    return ncclSuccess;
}

ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm)
{
    std::lock_guard<std::recursive_mutex> cuda_lock(state().mu);
    std::lock_guard<std::mutex> lock(nccl().mu);
    CommImpl *c = impl(comm);
    if (c == nullptr || (datatype != ncclFloat32 && datatype != ncclFloat64))
        return ncclInvalidArgument;
    PremulOp s;
    s.type = datatype;
    if (residence == ncclScalarDevice) {
        if (device_of(scalar, type_size(datatype)) != c->device)
            return ncclInvalidArgument; // device memory of the communicator's device
        s.device = scalar;
    } else if (residence == ncclScalarHostImmediate) {
        s.value = datatype == ncclFloat32 ? *static_cast<float *>(scalar)
                                          : *static_cast<double *>(scalar);
    } else {
        return ncclInvalidArgument;
    }
    int id = c->next_op++;
    c->premul_ops[id] = s;
    *op = static_cast<ncclRedOp_t>(id);
    return ncclSuccess;
}

ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    CommImpl *c = impl(comm);
    if (c == nullptr || c->premul_ops.erase((int)op) == 0)
        return ncclInvalidArgument;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream)
{
    Call c;
    c.kind = Collective::kAllReduce;
    c.send = sendbuff;
    c.recv = recvbuff;
    c.count = count;
    c.type = datatype;
    c.op = op;
    return enqueue(comm, stream, c);
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)
{
    Call c;
    c.kind = Collective::kBroadcast;
    c.send = sendbuff;
    c.recv = recvbuff;
    c.count = count;
    c.type = datatype;
    c.root = root;
    return enqueue(comm, stream, c);
}

// Groups: the emulated collectives never block a launch on one thread for
// another, so a group only has to nest.
ncclResult_t ncclGroupStart(void)
{
    group_depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void)
{
    if (group_depth == 0)
        return ncclInvalidUsage;
    group_depth--;
    return ncclSuccess;
}

// For the tests: a network failure under every live communicator (each
// of their ranks sees it).
void bp_emu_nccl_inject_error(void)
{
    std::lock_guard<std::mutex> lock(nccl().mu);
    for (CommImpl *c : nccl().comms)
        c->clique->error = ncclSystemError;
    nccl().cv.notify_all();
}

} // extern "C"
