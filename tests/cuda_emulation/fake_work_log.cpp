// fake_work_log.cpp — the emulated GPU's work log and record-only mode
// (emu_hooks.h), for the cost model of bench/step_profile.c: fake_cuda.cpp
// and fake_cublaslt.cpp wrap each piece of device work they queue in
// bp_emu::logged, which appends its description to the open log when it
// runs (so a replayed graph logs its work again) and runs it unless the
// device only records.
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "emu_hooks.h"
#include "fake_cuda_internal.h"

namespace {

struct WorkLog {
    std::mutex mu;
    bool open = false;
    bool record_only = false;
    std::vector<bp_emu_work> entries;
};

WorkLog &work_log()
{
    static WorkLog w;
    return w;
}

// The description of the launch this thread enqueues next (cuda_runtime.h's
// bp_emu_launch leaves it just before it enqueues).
thread_local bp_emu_work next_launch{};
thread_local bool next_launch_set = false;
// logged()'s mark for the next submission, and the node now running.
thread_local bool work_mark = false;
thread_local long long running_node = -1;
thread_local int running_deps_count = 0;
thread_local long long running_deps[BP_EMU_MAX_DEPS];

} // namespace

namespace bp_emu {

bool record_only()
{
    std::lock_guard<std::mutex> lock(work_log().mu);
    return work_log().record_only;
}

bool take_work_mark()
{
    bool m = work_mark;
    work_mark = false;
    return m;
}

void set_running_node(long long node, const long long *deps, int deps_count)
{
    running_node = node;
    running_deps_count = deps_count;
    if (deps_count > 0)
        std::memcpy(running_deps, deps, (size_t)deps_count * sizeof *deps);
}

std::function<void()> logged(const bp_emu_work &w, std::function<void()> op)
{
    work_mark = true;
    return [w, op] {
        WorkLog &l = work_log();
        bool run = true;
        {
            std::lock_guard<std::mutex> lock(l.mu);
            if (l.open) {
                l.entries.push_back(w);
                bp_emu_work &e = l.entries.back();
                e.node = running_node;
                e.deps_count = running_deps_count;
                if (running_deps_count > 0)
                    std::memcpy(e.deps, running_deps, (size_t)running_deps_count * sizeof *e.deps);
            }
            run = !l.record_only;
        }
        if (run)
            op();
    };
}

bp_emu_work take_launch_description()
{
    bp_emu_work w = next_launch;
    if (!next_launch_set) {
        w = bp_emu_work{};
        std::snprintf(w.name, sizeof w.name, "%s", "an undeclared kernel");
    }
    w.kind = BP_EMU_WORK_KERNEL;
    next_launch_set = false;
    return w;
}

bp_emu_work product(const char *name, int m, int n, int k, int math, size_t element_bytes)
{
    bp_emu_work w{};
    w.kind = BP_EMU_WORK_GEMM;
    std::snprintf(w.name, sizeof w.name, "%s", name);
    w.m = m, w.n = n, w.k = k, w.math = math;
    w.flops = 2.0 * m * n * k;
    w.bytes = (double)element_bytes * ((double)m * k + (double)k * n + (double)m * n);
    return w;
}

bp_emu_work copy(const char *name, size_t bytes)
{
    bp_emu_work w{};
    w.kind = BP_EMU_WORK_COPY;
    std::snprintf(w.name, sizeof w.name, "%s", name);
    w.bytes = (double)bytes;
    return w;
}

} // namespace bp_emu

extern "C" {

void bp_emu_describe_launch(const char *name, unsigned blocks, unsigned threads, double bytes,
                            double flops, double tail_bytes, int declared)
{
    next_launch = bp_emu_work{};
    std::snprintf(next_launch.name, sizeof next_launch.name, "%s", name);
    next_launch.blocks = blocks;
    next_launch.threads = threads;
    next_launch.bytes = bytes;
    next_launch.flops = flops;
    next_launch.tail_bytes = tail_bytes;
    next_launch.declared = declared;
    next_launch_set = true;
}

void bp_emu_set_record_only(int on)
{
    std::lock_guard<std::mutex> lock(work_log().mu);
    work_log().record_only = on != 0;
}

void bp_emu_work_log_open(void)
{
    bp_emu::run_all_streams(); // what was queued before belongs to no log
    std::lock_guard<std::mutex> lock(work_log().mu);
    work_log().entries.clear();
    work_log().open = true;
}

size_t bp_emu_work_log_close(bp_emu_work *out, size_t max)
{
    bp_emu::run_all_streams(); // what was queued runs (or is recorded) now
    WorkLog &l = work_log();
    std::lock_guard<std::mutex> lock(l.mu);
    l.open = false;
    size_t n = l.entries.size();
    if (out != nullptr)
        std::memcpy(out, l.entries.data(), (n < max ? n : max) * sizeof *out);
    l.entries.clear();
    return n;
}

} // extern "C"
