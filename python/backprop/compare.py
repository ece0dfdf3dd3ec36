"""compare: one batch's loss, gradients and activations on two backends,
layer by layer (bp_compare_backends), with the library's verdict."""

import ctypes
from dataclasses import dataclass

import numpy as np

from ._capi import S, lib, sized
from .network import Network, _parse, parse_device


@dataclass
class Comparison:
    """Per-layer differences (arrays of n_layers, layer 1 first): abs is the
    largest absolute difference, rel that divided by the largest magnitude
    in run a. tolerance and judges_gradients are the library's rule for the
    precision, dtype and math mode (bp_compare_tolerance_precision); passed is its
    verdict."""

    weight_grad_abs: np.ndarray
    weight_grad_rel: np.ndarray
    bias_grad_abs: np.ndarray
    bias_grad_rel: np.ndarray
    activation_abs: np.ndarray
    activation_rel: np.ndarray
    loss_a: float
    loss_b: float
    tolerance: float
    judges_gradients: bool

    @property
    def worst(self):
        """The largest judged rel over every layer."""
        judged = [self.activation_rel]
        if self.judges_gradients:
            judged += [self.weight_grad_rel, self.bias_grad_rel]
        return float(max(np.max(r) for r in judged))

    @property
    def passed(self):
        return self.worst <= self.tolerance


def compare(sizes, X, y, *, a="cpu", b="cuda", **network):
    """Builds the network that Network(sizes, **network) would build on
    device a and on device b (same seed: the same initial parameters),
    computes the loss and gradients of the batch X, y on each, and returns
    their Comparison. X holds at most max_batch rows."""
    net = Network(sizes, **network)  # validates the options and the arrays' form
    x, t = net._x(X), net._targets(y, np.asarray(X).shape[0])
    cfg = sized("bp_network_config", lib.bp_network_config_init_sized)
    c_sizes = (ctypes.c_int * len(net.sizes))(*net.sizes)
    c_acts = (ctypes.c_int * net.n_layers)(*[_parse("activation", n) for n in net.activations])
    cfg.n_layers, cfg.sizes, cfg.activations = net.n_layers, c_sizes, c_acts
    cfg.loss = _parse("loss", net.loss)
    cfg.dtype = _parse("dtype", net.dtype.name)
    cfg.max_batch, cfg.seed, cfg.leaky_slope = net.max_batch, net.seed, net.leaky_slope
    cfg.math_mode = _parse("math_mode", net.math_mode)
    cfg.precision = _parse("precision", net.precision)
    backend_a, dev_a = parse_device(a)
    backend_b, dev_b = parse_device(b)
    cfg.device = dev_b if backend_b else dev_a
    diffs = (S["bp_layer_diff"] * net.n_layers)()
    loss_a, loss_b = ctypes.c_double(), ctypes.c_double()
    lib.bp_compare_backends_sized(
        ctypes.byref(cfg), backend_a, backend_b, x.ctypes.data, t.ctypes.data, x.shape[0],
        diffs, ctypes.sizeof(S["bp_layer_diff"]), ctypes.byref(loss_a), ctypes.byref(loss_b),
    )
    tol, judges = ctypes.c_double(), ctypes.c_int()
    lib.bp_compare_tolerance_precision(cfg.precision, cfg.dtype, cfg.math_mode, ctypes.byref(tol),
                                       ctypes.byref(judges))
    net.close()
    fields = [f for f, _ in S["bp_layer_diff"]._fields_ if f != "struct_size"]
    arrays = {f: np.array([getattr(d, f) for d in diffs]) for f in fields}
    return Comparison(**arrays, loss_a=loss_a.value, loss_b=loss_b.value,
                      tolerance=tol.value, judges_gradients=bool(judges.value))
