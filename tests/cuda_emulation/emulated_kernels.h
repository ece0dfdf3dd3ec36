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
    bp_emu_register_barrier_kernel(check_finite_kernel<float, float, true>);
    bp_emu_register_barrier_kernel(check_finite_kernel<double, double, true>);
    bp_emu_register_barrier_kernel(check_finite_kernel<float, Vec16<float>, true>);
    bp_emu_register_barrier_kernel(check_finite_kernel<double, Vec16<double>, true>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<float, true>);
    bp_emu_register_barrier_kernel(optimizer_update_kernel<double, true>);
    return true;
}();

} // namespace
