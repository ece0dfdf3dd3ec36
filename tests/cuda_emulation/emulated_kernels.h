// emulated_kernels.h — the kernels of kernels/*.cu as rewritten by tests/cuda.cmake
// (launches become bp_emu_launch calls), compiled against cuda_runtime.h here,
// with the kernels that use __syncthreads() or warp shuffles registered as such.
#pragma once

#include BP_EMU_KERNELS_SOURCE

namespace {

const bool bp_emu_barrier_kernels_registered = [] {
    bp_emu_register_barrier_kernel(bias_grad_kernel<float>);
    bp_emu_register_barrier_kernel(bias_grad_kernel<double>);
    bp_emu_register_barrier_kernel(softmax_kernel<float>);
    bp_emu_register_barrier_kernel(softmax_kernel<double>);
    bp_emu_register_barrier_kernel(output_delta_kernel<float>);
    bp_emu_register_barrier_kernel(output_delta_kernel<double>);
    bp_emu_register_barrier_kernel(step_metrics_kernel<float>);
    bp_emu_register_barrier_kernel(step_metrics_kernel<double>);
    bp_emu_register_barrier_kernel(output_step_kernel<float>);
    bp_emu_register_barrier_kernel(output_step_kernel<double>);
    bp_emu_register_barrier_kernel(delta_bias_grad_kernel<float>);
    bp_emu_register_barrier_kernel(delta_bias_grad_kernel<double>);
    bp_emu_register_barrier_kernel(mixed_delta_kernel<true>);
    bp_emu_register_barrier_kernel(check_finite_kernel<float, true, false>);
    bp_emu_register_barrier_kernel(check_finite_kernel<double, true, false>);
    bp_emu_register_barrier_kernel(check_finite_kernel<float, true, true>);
    bp_emu_register_barrier_kernel(check_finite_kernel<double, true, true>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<float, true, true>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<float, true, false>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<float, false, true>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<float, false, false>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<double, true, false>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<double, false, false>);
    return true;
}();

} // namespace
