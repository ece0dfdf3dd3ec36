"""fit: a training run by the library's trainer (bp_trainer_*), over NumPy
arrays. The epoch loop, shuffling, schedules, validation, early stopping,
checkpoints and data-parallel replicas are the library's; this module turns
arrays into data sets, options into a bp_trainer_config, and the trainer's
callbacks into a progress bar, a history and Ctrl-C handling."""

import ctypes
import math
import os
import signal
import threading
from dataclasses import dataclass, field

from ._capi import C, lib, sized
from .network import _parse


@dataclass
class FitResult:
    """How a run ended (bp_trainer_result) and every epoch's figures
    (history: one dict per epoch, as the trainer reported it)."""

    epochs: int
    steps: int
    stopped: bool
    early_stopped: bool
    best_epoch: int
    best_loss: float
    train_loss: float
    val_loss: float
    val_accuracy: float
    history: list = field(default_factory=list)


def _fields(ptr):
    """A callback's struct as a dict: only the fields inside the struct_size
    the library filled (an older library's struct is shorter)."""
    s = ptr.contents
    out = {}
    for name, ctype in type(s)._fields_:
        offset = getattr(type(s), name).offset
        if name == "struct_size" or offset + ctypes.sizeof(ctype) > s.struct_size:
            continue
        if ctype is ctypes.c_void_p:
            continue  # pointers (the network) are for C callers
        out[name] = getattr(s, name)
    return out


class Dataset:
    """A bp_dataset over the caller's arrays, not copied (bp_dataset_wrap):
    the arrays are kept alive and unchanged as long as this object."""

    def __init__(self, net, X, y, name="X"):
        self.handle = None
        self.x = net._x(X, name)
        rows = self.x.shape[0]
        tname = "y" if name == "X" else name.replace("X", "y")
        self.targets = net._targets(y, rows, tname)
        self.handle = ctypes.c_void_p()
        labels = self.targets if net.classifies else None
        reals = None if net.classifies else self.targets
        lib.bp_dataset_wrap(
            rows,
            self.x.shape[1],
            0 if net.classifies else self.targets.shape[1],
            _parse("dtype", net.dtype.name),
            self.x.ctypes.data,
            None if labels is None else labels.ctypes.data,
            None if reals is None else reals.ctypes.data,
            ctypes.byref(self.handle),
        )

    def close(self):
        handle, self.handle = self.handle, None
        if handle:
            lib.bp_dataset_free(handle)

    def __del__(self):
        self.close()


class _Progress:
    """A tqdm bar over the run's steps when tqdm is installed, else nothing."""

    def __init__(self, enabled):
        self.tqdm = self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.tqdm = tqdm
            except ImportError:
                pass

    def start(self, total):
        if self.tqdm is not None:
            self.bar = self.tqdm(total=total, unit="step", leave=True)

    def step(self, n=1, loss=None):
        if self.bar is not None:
            self.bar.update(n)
            if loss is not None and math.isfinite(loss):
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def epoch(self, e):
        if self.bar is not None:
            text = f"epoch {e['epoch']}/{e['epochs']} loss {e['train_loss']:.4f}"
            if math.isfinite(e.get("val_loss", math.nan)):
                text += f" val {e['val_loss']:.4f}"
            self.bar.set_description(text)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _Run:
    """The callbacks of one fit: history, progress, the user's on_epoch,
    and the stop flag that Ctrl-C and a failing callback set."""

    def __init__(self, progress, on_epoch):
        self.progress, self.on_epoch = progress, on_epoch
        self.history, self.error = [], None
        self.interrupted = False
        self.c_step = C.callbacks["bp_trainer_step_fn"](self._step)
        self.c_epoch = C.callbacks["bp_trainer_epoch_fn"](self._epoch)
        self.c_stop = C.callbacks["bp_trainer_stop_fn"](self._should_stop)

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: B036 - kept and re-raised after the run
            if self.error is None:
                self.error = e

    def _step(self, user, step):
        self._guard(lambda: self.progress.step(1, step.contents.loss))

    def _epoch(self, user, epoch):
        def record():
            e = _fields(epoch)
            self.history.append(e)
            self.progress.epoch(e)
            if self.on_epoch is not None:
                self.on_epoch(e)

        self._guard(record)

    def _should_stop(self, user):
        return int(self.interrupted or self.error is not None)

    def sigint(self, signum, frame):
        self.interrupted = True


def _optimizer(net, optimizer, hyper):
    if optimizer is None and not hyper:
        return
    current = net.optimizer
    name = optimizer or current.pop("name")
    if optimizer is None:  # the same optimizer with some values changed
        current.update(hyper)
        hyper = {k: v for k, v in current.items() if k != "name"}
    net.set_optimizer(name, **hyper)


def _config(run, epochs, batch, seed, shuffle, schedule, validation_fraction, patience,
            restore_best, checkpoint, devices, report_every, extra):
    cfg = sized("bp_trainer_config", lib.bp_trainer_config_init_sized)
    cfg.epochs, cfg.batch, cfg.seed, cfg.shuffle = int(epochs), int(batch), int(seed), int(shuffle)
    cfg.schedule = _parse("schedule", schedule)
    cfg.validation_fraction = float(validation_fraction)
    cfg.patience, cfg.restore_best = int(patience), int(bool(restore_best))
    for key, value in extra.items():
        setattr(cfg, key, type(getattr(cfg, key))(value))
    if checkpoint is not None:
        cfg.checkpoint = os.fsencode(checkpoint)
    cfg.report_every = int(report_every)
    if run.progress.tqdm is not None:  # only a bar needs a call per step
        cfg.on_step = run.c_step
    cfg.on_epoch, cfg.should_stop = run.c_epoch, run.c_stop
    if devices is not None and len(devices) > 1:
        c_devices = (ctypes.c_int * len(devices))(*[int(d) for d in devices])
        cfg.n_devices = len(devices)
        cfg.devices = c_devices
    return cfg


_SCHEDULE_KEYS = (
    "warmup_epochs",
    "step_epochs",
    "step_gamma",
    "plateau_factor",
    "plateau_patience",
    "min_lr",
    "min_delta",
    "checkpoint_epochs",
    "checkpoint_steps",
)
_OPTIMIZER_KEYS = set(
    "lr weight_decay momentum dampening nesterov amsgrad beta1 beta2 eps clip_grad_norm".split()
)


def fit(
    net,
    X,
    y,
    *,
    epochs=10,
    batch=32,
    optimizer=None,
    seed=1,
    shuffle=True,
    schedule="constant",
    validation_fraction=0.0,
    validation_data=None,
    patience=0,
    restore_best=True,
    checkpoint=None,
    resume=None,
    devices=None,
    progress=True,
    on_epoch=None,
    report_every=None,
    **options,
):
    """Trains net on X, y with the library's trainer and returns a FitResult.

    X [n, n_0]; y class labels for ce, else reals [n, n_L]. The arrays are
    used in place (no copy) when they already have the network's dtype and
    C layout. optimizer: sgd, adam or adamw (None keeps the network's) and
    its hyperparameters as keywords (lr, momentum, weight_decay, beta1, ...).
    schedule: constant, cosine, step or plateau (warmup_epochs, step_epochs,
    step_gamma, plateau_factor, plateau_patience, min_lr). seed: the
    shuffles and the validation split. validation_fraction: rows held out
    (never trained on) and evaluated every epoch; or validation_data=(Xv,
    yv). patience (with min_delta): early stopping on the validation loss
    (the training loss without validation), restore_best keeping the best
    epoch's parameters. checkpoint: a file written every checkpoint_epochs
    epochs (or checkpoint_steps steps) and on Ctrl-C; resume: a checkpoint
    to continue from, bit for bit. devices: CUDA ordinals for data-parallel
    training on one process's GPUs (the network on the first). progress: a
    tqdm bar when tqdm is installed. on_epoch: called with each epoch's
    figures (a dict). Ctrl-C ends the run cleanly after the current step
    (writing the checkpoint, if any) and then raises KeyboardInterrupt.
    """
    hyper = {k: options.pop(k) for k in list(options) if k in _OPTIMIZER_KEYS}
    extra = {k: options.pop(k) for k in list(options) if k in _SCHEDULE_KEYS}
    if options:
        raise TypeError(f"fit: unknown option(s) {', '.join(sorted(options))}")
    if checkpoint is not None:  # a checkpoint that cannot be written fails now, not after an epoch
        lib.bp_file_replace_check(os.fsencode(checkpoint))
    train = Dataset(net, X, y)
    val = None if validation_data is None else Dataset(net, *validation_data, name="X_val")
    _optimizer(net, optimizer, hyper)
    run = _Run(_Progress(progress), on_epoch)
    if report_every is None:  # a bar shows the loss now and then (a device wait)
        report_every = 50 if run.progress.tqdm is not None else 0
    cfg = _config(run, epochs, batch, seed, shuffle, schedule, validation_fraction, patience,
                  restore_best, checkpoint, devices, report_every, extra)
    trainer = ctypes.c_void_p()
    lib.bp_trainer_create(net.handle, train.handle, val and val.handle, ctypes.byref(cfg),
                          ctypes.byref(trainer))
    try:
        # The data sets stay alive as long as the trainer (bp_trainer_resume
        # reads the training set again to redo the validation split).
        if resume is not None:
            lib.bp_trainer_resume(trainer, os.fsencode(resume))
        desc = sized("bp_trainer_desc")
        desc.struct_size = ctypes.sizeof(desc)
        lib.bp_trainer_describe_sized(trainer, ctypes.byref(desc), ctypes.sizeof(desc))
        run.progress.start(int(epochs) * desc.steps_per_epoch)
        result = _fit(trainer, run)
    finally:
        lib.bp_trainer_free(trainer)
        train.close()
        if val is not None:
            val.close()
        run.progress.close()
    if run.error is not None:
        raise run.error
    if run.interrupted:
        raise KeyboardInterrupt(
            f"training stopped by Ctrl-C after {result.epochs} whole epoch(s) and "
            f"{result.steps} step(s) of this call; the network holds the parameters "
            f"of its last step" + (" and the checkpoint was written" if checkpoint else "")
        )
    return result


def _fit(trainer, run):
    """bp_trainer_fit, with Ctrl-C turned into a stop between steps."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, run.sigint) if main else None
    try:
        r = sized("bp_trainer_result")
        r.struct_size = ctypes.sizeof(r)
        lib.bp_trainer_fit_sized(trainer, ctypes.byref(r), ctypes.sizeof(r))
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return FitResult(
        epochs=r.epochs,
        steps=r.steps,
        stopped=bool(r.stopped),
        early_stopped=bool(r.early_stopped),
        best_epoch=r.best_epoch,
        best_loss=r.best_loss,
        train_loss=r.train_loss,
        val_loss=r.val_loss,
        val_accuracy=r.val_accuracy,
        history=run.history,
    )
