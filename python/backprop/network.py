"""Network: a libbackprop network (bp_network) with NumPy in and out."""

import ctypes
import functools
import os
import threading
from collections import namedtuple

import numpy as np

from . import _arrays
from ._capi import CONSTANTS, S, lib, sized
from .errors import BackpropError

Evaluation = namedtuple("Evaluation", "loss accuracy correct n_samples")
Evaluation.__doc__ = """What bp_network_evaluate measured: the mean loss (the
training loss's formula; NaN without targets), the accuracy and the count
of correct predictions (NaN and 0 without labels), and the samples."""


def _name(kind, value):
    return getattr(lib, f"bp_{kind}_name")(value).decode()


def _parse(kind, name):
    """An enum value from its name, by the library's own parser (which
    accepts its aliases and names the accepted ones when it fails)."""
    if not isinstance(name, str):
        raise TypeError(f"{kind}: expected a name (str), got {name!r}")
    out = ctypes.c_int()
    getattr(lib, f"bp_{kind}_parse")(name.encode(), ctypes.byref(out))
    return out.value


def cuda_device_count():
    """CUDA devices the library sees (0 when CUDA is built but no device or
    driver is present, or when it is not built)."""
    built = ctypes.c_int()
    lib.bp_backend_is_built(CONSTANTS["BP_BACKEND_CUDA"], ctypes.byref(built))
    if not built.value:
        return 0
    count = ctypes.c_int()
    lib.bp_cuda_device_count(ctypes.byref(count))
    return count.value


def parse_device(device):
    """'cpu', 'cuda', 'cuda:1', 'auto' (CUDA device 0 when one is present,
    else the CPU) -> (backend, ordinal)."""
    device = str(device)
    if device == "auto":
        return (CONSTANTS["BP_BACKEND_CUDA"], 0) if cuda_device_count() else (0, 0)
    name, _, ordinal = device.partition(":")
    backend = _parse("backend", name)
    if ordinal and not ordinal.isdigit():
        raise ValueError(f"device {device!r}: the ordinal after ':' must be a number")
    return backend, int(ordinal or 0)


def _device_name(backend, ordinal):
    return "cpu" if backend == CONSTANTS["BP_BACKEND_CPU"] else f"cuda:{ordinal}"


def _one_thread(method):
    """A network is used by one thread at a time (include/backprop.h,
    "Thread safety"). The GIL is released during library calls, so calls
    on one Network from several Python threads take turns here."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


def _activations(activation, output_activation, n_layers):
    if isinstance(activation, (list, tuple)):
        if output_activation is not None:
            raise ValueError("give output_activation only with one hidden activation")
        if len(activation) != n_layers:
            raise ValueError(
                f"activation: {len(activation)} names for {n_layers} layers "
                f"(one per layer, or one name for the hidden layers)"
            )
        return list(activation)
    return [activation] * (n_layers - 1) + [output_activation or "identity"]


class Network:
    """A fully connected network on the CPU or a CUDA device.

    sizes: the layer widths, inputs first (e.g. [784, 256, 10]).
    activation: the hidden layers' activation, or a list of one per layer
      (identity, sigmoid, tanh, relu, leaky_relu). output_activation: the
      last layer's when activation is one name (default identity; the
      cross-entropy and bce losses need identity: they apply softmax or
      sigmoid themselves).
    loss: mse (the 1/2 form), ce (softmax cross-entropy on class labels) or
      bce (binary cross-entropy on logits).
    dtype: float32 or float64. precision: auto (the dtype's own),
      64-true, 32-true, bf16-mixed or 16-mixed (16-bit storage and products
      with float32 master weights; float32 arrays in and out).
    device: cpu, cuda, cuda:N or auto.
    seed: the initialisation seed (the same seed gives the same parameters
      on every backend). max_batch: the largest batch of step() and
      gradients() (forward, evaluate and fit take any number of rows).
    Arrays are row-major [n_samples, n_features]; class labels are integers
    in [0, sizes[-1]).
    """

    def __init__(
        self,
        sizes,
        activation="relu",
        *,
        output_activation=None,
        loss="mse",
        dtype="float32",
        precision="auto",
        device="cpu",
        seed=1,
        max_batch=256,
        leaky_slope=0.01,
        math_mode="fp32",
        cuda_graphs=True,
        fused_epilogues=True,
    ):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes {sizes}: at least the inputs and one layer")
        n_layers = len(sizes) - 1
        acts = _activations(activation, output_activation, n_layers)
        cfg = sized("bp_network_config", lib.bp_network_config_init_sized)
        c_sizes = (ctypes.c_int * len(sizes))(*sizes)
        c_acts = (ctypes.c_int * n_layers)(*[_parse("activation", a) for a in acts])
        cfg.n_layers = n_layers
        cfg.sizes = c_sizes
        cfg.activations = c_acts
        cfg.loss = _parse("loss", loss)
        cfg.dtype = _parse("dtype", _arrays.numpy_dtype(dtype).name)
        cfg.backend, cfg.device = parse_device(device)
        cfg.max_batch = int(max_batch)
        cfg.seed = int(seed)
        cfg.leaky_slope = float(leaky_slope)
        cfg.math_mode = _parse("math_mode", math_mode)
        cfg.cuda_graphs = int(bool(cuda_graphs))
        cfg.fused_epilogues = int(bool(fused_epilogues))
        cfg.precision = _parse("precision", precision)
        handle = ctypes.c_void_p()
        lib.bp_network_create(ctypes.byref(cfg), ctypes.byref(handle))
        self._adopt(handle)

    # ---- construction from a handle, description ---------------------------------
    @classmethod
    def _from_handle(cls, handle):
        net = cls.__new__(cls)
        net._adopt(handle)
        return net

    def _adopt(self, handle):
        self._lock = threading.RLock()
        self._handle = handle
        d = S["bp_network_desc"]()
        lib.bp_network_describe_sized(handle, ctypes.byref(d), ctypes.sizeof(d))
        n = d.n_layers
        self.sizes = tuple(d.sizes[i] for i in range(n + 1))
        self.activations = tuple(_name("activation", d.activations[i]) for i in range(n))
        self.loss = _name("loss", d.loss)
        self.dtype = np.dtype(np.float32 if d.dtype == CONSTANTS["BP_F32"] else np.float64)
        self.device = _device_name(d.backend, d.device)
        self.max_batch = d.max_batch
        self.seed = d.seed
        self.leaky_slope = d.leaky_slope
        self.n_params = d.n_params
        self.math_mode = _name("math_mode", d.math_mode)
        self.precision = _name("precision", d.precision)

    def close(self):
        """Frees the library's network now (also done when collected)."""
        with self._lock:
            handle, self._handle = self._handle, None
            if handle:
                lib.bp_network_free(handle)

    def __del__(self):
        if getattr(self, "_handle", None):
            self.close()

    @property
    def handle(self):
        """The bp_network pointer (for other C code); valid while self lives."""
        if not self._handle:
            raise ValueError("the network was closed")
        return self._handle

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    @property
    def classifies(self):
        """True when the loss takes class labels (cross-entropy)."""
        return self.loss == "ce"

    def __repr__(self):
        return (
            f"Network({list(self.sizes)}, activation={list(self.activations)}, "
            f"loss={self.loss!r}, dtype={self.dtype.name!r}, precision={self.precision!r}, "
            f"device={self.device!r}, "
            f"seed={self.seed})"
        )

    # ---- arrays in -------------------------------------------------------------------
    def _x(self, X, name="X"):
        return _arrays.reals(X, self.dtype, name, width=self.sizes[0])

    def _targets(self, y, rows, name="y"):
        """Targets in the loss's form: int32 labels for ce, reals [n, n_L]."""
        if self.classifies:
            return _arrays.labels(y, self.sizes[-1], name, rows)
        return _arrays.reals(y, self.dtype, name, width=self.sizes[-1], rows=rows)

    def _labels(self, labels, rows):
        if labels is None:
            return None
        return _arrays.labels(labels, self.sizes[-1], "labels", rows)

    # ---- computing -------------------------------------------------------------------
    @_one_thread
    def forward(self, X):
        """a^L for every row of X: [n, n_L] (softmax probabilities for ce,
        sigmoid probabilities for bce). Any number of rows."""
        x = self._x(X)
        out = np.empty((x.shape[0], self.sizes[-1]), dtype=self.dtype)
        self._evaluate(x, None, None, outputs=out)
        return out

    @_one_thread
    def predict(self, X):
        """The predicted class of every row: the index of the largest output
        (the first of equal ones), int32 [n]."""
        x = self._x(X)
        pred = np.empty(x.shape[0], dtype=np.int32)
        self._evaluate(x, None, None, predictions=pred)
        return pred

    @_one_thread
    def evaluate(self, X, y=None, labels=None):
        """Loss and accuracy over X, by the training loss's formula. y: the
        loss's targets (labels for ce, reals [n, n_L] otherwise) or None;
        labels: class labels for the accuracy (with ce, y serves)."""
        x = self._x(X)
        t = None if y is None else self._targets(y, x.shape[0])
        lab = self._labels(labels, x.shape[0])
        return self._evaluate(x, t, lab)

    def _evaluate(self, x, targets, labels, outputs=None, predictions=None):
        o = S["bp_evaluation_outputs"]()
        o.outputs = _arrays.address(outputs)
        if predictions is not None:
            o.predictions = predictions.ctypes.data_as(type(o.predictions))
        o.struct_size = ctypes.sizeof(o)
        r = S["bp_evaluation"]()
        lib.bp_network_evaluate_sized(
            self.handle,
            _arrays.address(x),
            _arrays.address(targets),
            None if labels is None else labels.ctypes.data,
            x.shape[0],
            ctypes.byref(o),
            ctypes.byref(r),
            ctypes.sizeof(r),
        )
        return Evaluation(r.loss, r.accuracy, r.correct, r.n_samples)

    @_one_thread
    def gradients(self, X, y):
        """Loss and gradients of one batch (at most max_batch rows), without
        an update: (loss, [(dW1, db1), (dW2, db2), ...])."""
        x = self._x(X)
        t = self._targets(y, x.shape[0])
        loss = ctypes.c_double()
        lib.bp_network_gradients(
            self.handle, x.ctypes.data, t.ctypes.data, x.shape[0], ctypes.byref(loss)
        )
        grads = []
        for layer in range(1, self.n_layers + 1):
            w, b = self._layer_arrays(layer)
            lib.bp_network_get_gradients(self.handle, layer, w.ctypes.data, b.ctypes.data)
            grads.append((w, b))
        return loss.value, grads

    @_one_thread
    def step(self, X, y):
        """One training step on one batch (at most max_batch rows) with the
        network's optimizer (set_optimizer); returns the batch's mean loss
        before the update. A non-finite loss or gradient changes nothing
        and raises NumericError."""
        x = self._x(X)
        t = self._targets(y, x.shape[0])
        loss = ctypes.c_double()
        lib.bp_network_step(
            self.handle, x.ctypes.data, t.ctypes.data, x.shape[0], ctypes.byref(loss)
        )
        return loss.value

    @_one_thread
    def layer_state(self, layer, batch):
        """(z, a, delta) of layer (1..L) for the first `batch` samples of the
        last forward (and backward) pass, each [batch, n_l]. z is None when
        that pass was a training step (step, fit) that fused the layer's
        product, bias and ReLU and so did not store z (fused_epilogues, on
        by default for float32 ReLU layers); forward() or gradients() store
        it again."""
        n = self.sizes[layer] if 1 <= layer <= self.n_layers else 0
        z, a, d = (np.empty((batch, n), dtype=self.dtype) for _ in range(3))
        try:
            lib.bp_network_get_layer_state(
                self.handle, layer, batch, z.ctypes.data, a.ctypes.data, d.ctypes.data
            )
        except BackpropError as e:
            if e.status != CONSTANTS["BP_ERR_UNSUPPORTED"]:
                raise
            z = None  # not stored; a and delta are
            lib.bp_network_get_layer_state(
                self.handle, layer, batch, None, a.ctypes.data, d.ctypes.data
            )
        return z, a, d

    # ---- parameters ------------------------------------------------------------------
    def _layer_arrays(self, layer):
        return (
            np.empty((self.sizes[layer], self.sizes[layer - 1]), dtype=self.dtype),
            np.empty(self.sizes[layer], dtype=self.dtype),
        )

    @_one_thread
    def get_params(self):
        """Copies of the parameters: [(W1, b1), (W2, b2), ...], W^l
        [n_l, n_{l-1}] (nn.Linear's layout), b^l [n_l]."""
        params = []
        for layer in range(1, self.n_layers + 1):
            w, b = self._layer_arrays(layer)
            lib.bp_network_get_params(self.handle, layer, w.ctypes.data, b.ctypes.data)
            params.append((w, b))
        return params

    @_one_thread
    def set_params(self, params):
        """Sets every layer's (W, b), shapes as get_params gives them."""
        params = list(params)
        if len(params) != self.n_layers:
            raise ValueError(f"{len(params)} (W, b) pairs for {self.n_layers} layers")
        checked = []
        for layer, (w, b) in enumerate(params, start=1):
            n_out, n_in = self.sizes[layer], self.sizes[layer - 1]
            w = _arrays.reals(w, self.dtype, f"W{layer}", width=n_in, rows=n_out)
            b = _arrays.reals(np.reshape(b, (-1, 1)), self.dtype, f"b{layer}", 1, rows=n_out)
            checked.append((w, b))
        for layer, (w, b) in enumerate(checked, start=1):
            lib.bp_network_set_params(self.handle, layer, w.ctypes.data, b.ctypes.data)

    # ---- the optimizer ---------------------------------------------------------------
    @staticmethod
    def _hyperparameters(opt_type):
        """The names of an optimizer's hyperparameters, from the library's
        table (so every optimizer's, RMSprop's alpha and centered included)."""
        count = ctypes.c_int()
        lib.bp_optimizer_hyperparams(opt_type, ctypes.byref(count))
        names = []
        for i in range(count.value):
            h = sized("bp_hyperparam")
            lib.bp_optimizer_hyperparam_sized(opt_type, i, ctypes.byref(h), ctypes.sizeof(h))
            names.append(h.name.decode())
        return names

    @_one_thread
    def set_optimizer(self, name="sgd", **hyperparameters):
        """The network's optimizer: sgd, adam, adamw or rmsprop, with
        torch.optim's hyperparameters (lr, weight_decay, momentum, beta1,
        eps, alpha, centered, ... as the library's table names them) and
        clip_grad_norm; the rest keep the library's defaults for that
        optimizer. A value out of range raises the library's error."""
        opt = sized("bp_optimizer", lib.bp_optimizer_init_sized, _parse("optimizer", name))
        known = self._hyperparameters(opt.type)
        for key, value in hyperparameters.items():
            if key not in known:
                raise TypeError(
                    f"set_optimizer: {name} has no hyperparameter {key!r} (it has {', '.join(known)})"
                )
            lib.bp_optimizer_set_value(ctypes.byref(opt), key.encode(), float(value))
        lib.bp_network_set_optimizer(self.handle, ctypes.byref(opt))

    @property
    @_one_thread
    def optimizer(self):
        """The optimizer as a dict: its name and hyperparameters."""
        opt = sized("bp_optimizer")
        opt.struct_size = ctypes.sizeof(opt)
        lib.bp_network_get_optimizer_sized(self.handle, ctypes.byref(opt), ctypes.sizeof(opt))
        out = {"name": _name("optimizer", opt.type)}
        value = ctypes.c_double()
        for key in self._hyperparameters(opt.type):
            lib.bp_optimizer_get_value(ctypes.byref(opt), key.encode(), ctypes.byref(value))
            out[key] = value.value
        return out

    @_one_thread
    def set_lr(self, lr):
        lib.bp_network_set_lr(self.handle, float(lr))

    @_one_thread
    def reset_optimizer(self):
        """Clears the optimizer's state: the next step is a first step."""
        lib.bp_network_reset_optimizer(self.handle)

    # ---- files -----------------------------------------------------------------------
    @_one_thread
    def save(self, path):
        """Saves the model as safetensors (bp_model_save: replaced whole or
        not at all); PyTorch and `backprop eval/predict` read it."""
        lib.bp_model_save(self.handle, _path(path))

    @_one_thread
    def save_16bit(self, path):
        """Saves the parameters rounded to the 16 bits a mixed precision's
        forward pass multiplies them in (BF16 or F16 tensors, for inference
        elsewhere; Network.load reads only the float32 files of save)."""
        lib.bp_model_save_16bit(self.handle, _path(path), _parse("precision", self.precision))

    @classmethod
    def load(cls, path, *, device="cpu", max_batch=256, math_mode="fp32"):
        """A network from a model file: architecture and dtype from the file."""
        cfg = sized("bp_network_config", lib.bp_network_config_init_sized)
        cfg.backend, cfg.device = parse_device(device)
        cfg.max_batch = int(max_batch)
        cfg.math_mode = _parse("math_mode", math_mode)
        handle = ctypes.c_void_p()
        lib.bp_model_load(_path(path), ctypes.byref(cfg), ctypes.byref(handle))
        return cls._from_handle(handle)

    @_one_thread
    def load_params(self, path):
        """Loads a model file's parameters into this network; a file of
        another architecture raises InvalidArgumentError and changes nothing."""
        lib.bp_model_load_params(self.handle, _path(path))

    @_one_thread
    def save_checkpoint(self, path):
        """Parameters and optimizer state (bp_checkpoint_save)."""
        lib.bp_checkpoint_save(self.handle, None, _path(path))

    @_one_thread
    def load_checkpoint(self, path):
        """Restores parameters and optimizer state (bp_checkpoint_load)."""
        lib.bp_checkpoint_load(self.handle, _path(path), None)

    # ---- checks ----------------------------------------------------------------------
    @_one_thread
    def gradcheck(self, X, y, *, eps=1e-5, floor=1e-3, max_per_layer=0):
        """Backprop's gradients against central differences: the largest
        relative error per layer (layer 1 first). Meaningful in float64."""
        x = self._x(X)
        t = self._targets(y, x.shape[0])
        cfg = S["bp_gradcheck_config"]()
        lib.bp_gradcheck_config_init_sized(ctypes.byref(cfg), ctypes.sizeof(cfg))
        cfg.eps, cfg.floor, cfg.max_per_layer = float(eps), float(floor), int(max_per_layer)
        out = np.empty(self.n_layers, dtype=np.float64)
        lib.bp_network_gradcheck(
            self.handle, x.ctypes.data, t.ctypes.data, x.shape[0], ctypes.byref(cfg), out.ctypes.data
        )
        return out

    # ---- other worlds ----------------------------------------------------------------
    def to_torch(self, probabilities=True):
        """An equal torch.nn.Sequential: nn.Linear layers with these weights
        and the activations; with probabilities (default) it ends with the
        loss's softmax or sigmoid, so it outputs what forward() outputs."""
        from ._torch import to_torch

        return to_torch(self, probabilities)

    @_one_thread
    def fit(self, X, y, **options):
        """Trains on X, y with the library's trainer; see backprop.fit."""
        from .fit import fit

        return fit(self, X, y, **options)

    # ---- pickling: the configuration and the parameters --------------------------------
    def __getstate__(self):
        return {
            "sizes": self.sizes,
            "activations": self.activations,
            "loss": self.loss,
            "dtype": self.dtype.name,
            "device": self.device,
            "seed": self.seed,
            "max_batch": self.max_batch,
            "leaky_slope": self.leaky_slope,
            "math_mode": self.math_mode,
            "precision": self.precision,
            "params": self.get_params(),
        }

    def __setstate__(self, state):
        params = state.pop("params")
        self.__init__(state.pop("sizes"), list(state.pop("activations")), **state)
        self.set_params(params)


def _path(path):
    return os.fsencode(path)
