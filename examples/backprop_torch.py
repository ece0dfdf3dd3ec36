"""A backprop model file in PyTorch in one call.

    import backprop_torch
    model = backprop_torch.load("m.safetensors")      # a torch.nn.Sequential
    x, labels = backprop_torch.read_data("test.csv", model)
    probabilities = model(x)
    names = model.class_names                          # or None

load() builds the nn.Sequential the file describes: the input scaling the
model was trained with (--standardize, --scale) as its first module, then
each layer's nn.Linear and activation, then the loss's Softmax (ce) or
Sigmoid (bce) unless probabilities=False (then the outputs are the logits,
as for training with nn.CrossEntropyLoss or nn.BCEWithLogitsLoss). The
class names, label column, delimiter and the whole metadata are attributes
of the returned model.

read_data() reads what `backprop` reads, the same way: an IDX images file
(pixels / 255; labels from the labels file beside it) or a CSV (header row
detected, labels from the model's label column or the header's label,
class, target or y column or the last one; labels that are names mapped
with the model's class names). It returns the features as a tensor of the
model's dtype, unscaled (the model scales them), and the labels (a tensor
of class numbers), a regression model's targets, or None.

Needs only torch and numpy; the safetensors package is not required.
"""
import csv
import gzip
import json
import os
import struct

import numpy as np
import torch

__all__ = ["load", "read_data", "load_safetensors", "InputScaling"]


def load_safetensors(path):
    """The tensors and the __metadata__ of a safetensors file, read by hand
    (safetensors.torch.load_file gives the same tensors)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    dtypes = {"F32": np.float32, "F64": np.float64}
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


class InputScaling(torch.nn.Module):
    """x -> (x - offset) / scale, per feature: the model's input scaling."""

    def __init__(self, offset, scale, how):
        super().__init__()
        self.how = how
        self.register_buffer("offset", offset)
        self.register_buffer("scale", scale)

    def forward(self, x):
        return (x - self.offset) / self.scale

    def extra_repr(self):
        return f"{self.how}, {self.offset.numel()} features"


def _activation(name, slope):
    return {
        "identity": torch.nn.Identity,
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "relu": torch.nn.ReLU,
        "leaky_relu": lambda: torch.nn.LeakyReLU(slope),
    }[name]()


def load(path, probabilities=True):
    """The model file at path as a torch.nn.Sequential (see the module's
    documentation)."""
    tensors, meta = load_safetensors(path)
    dtype = tensors["layers.0.weight"].dtype
    modules = []
    if "input_transform" in meta:
        offset = torch.tensor(json.loads(meta["input_offset"]), dtype=torch.float64)
        scale = torch.tensor(json.loads(meta["input_scale"]), dtype=torch.float64)
        modules.append(InputScaling(offset.to(dtype), scale.to(dtype), meta["input_transform"]))
    slope = float(meta.get("leaky_slope", "0.01"))
    for i, act in enumerate(meta["activations"].split(",")):
        w, b = tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        modules += [linear, _activation(act, slope)]
    if probabilities and meta["loss"] == "ce":
        modules.append(torch.nn.Softmax(dim=1))
    elif probabilities and meta["loss"] == "bce":
        modules.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*modules)
    model.metadata = meta
    model.dtype = dtype
    model.loss = meta["loss"]
    model.class_names = json.loads(meta["class_names"]) if "class_names" in meta else None
    model.label_column = int(meta["label_column"]) if "label_column" in meta else None
    model.n_targets = int(meta.get("targets", "0"))
    model.delimiter = {"tab": "\t", "space": " "}.get(meta.get("delimiter"), meta.get("delimiter"))
    return model


def _opener(path):
    """gzip.open for a gzip file (by its magic bytes, whatever its name)."""
    with open(path, "rb") as f:
        return gzip.open if f.read(2) == b"\x1f\x8b" else open


def _read_idx(path):
    with _opener(path)(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
    return np.frombuffer(raw[4 + 4 * rank :], dtype=np.uint8).reshape(dims[0], -1)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _csv_rows(path, delimiter):
    with _opener(path)(path, "rt", encoding="utf-8-sig", newline="") as f:
        if delimiter == " ":
            return [line.split() for line in f if line.strip()]
        reader = csv.reader(f, delimiter=delimiter or ",")
        return [[c.strip() for c in row] for row in reader if any(c.strip() for c in row)]


def _label_column(first, model, n_columns):
    if model is not None and model.label_column is not None:
        return model.label_column
    for name in ("label", "class", "target", "y"):
        for i, cell in enumerate(first):
            if cell.strip('"').lower() == name:
                return i
    return n_columns - 1


def read_data(path, model=None, unlabeled=False, label_column=None, delimiter=None):
    """(features, labels) of an IDX or CSV file, read as backprop reads it
    for `model` (see the module's documentation)."""
    dtype = model.dtype if model is not None else torch.float32
    with _opener(path)(path, "rb") as f:
        is_idx = f.read(2) == b"\x00\x00"  # no CSV text starts so
    if is_idx:
        x = _read_idx(path).astype(np.float64) / 255.0
        base = os.path.basename(path)
        labels_path = os.path.join(os.path.dirname(path), base.replace("images-idx3", "labels-idx1"))
        y = None
        if "images-idx3" in base and os.path.exists(labels_path):
            y = torch.from_numpy(_read_idx(labels_path).reshape(-1).astype(np.int64))
        return torch.from_numpy(x).to(dtype), y
    if delimiter is None and model is not None:
        delimiter = model.delimiter
    rows = _csv_rows(path, delimiter)
    n_targets = model.n_targets if model is not None else 0
    label = None
    if not unlabeled and n_targets == 0:
        label = label_column
        if label is None:
            label = _label_column(rows[0], model, len(rows[0]))
    width = len(rows[0])
    features = [i for i in range(width) if i != label and not (n_targets and i >= width - n_targets)]
    named = label is not None and rows[0][label].strip('"').lower() in ("label", "class", "target", "y")
    if named or any(not _is_number(rows[0][i]) for i in features):
        rows = rows[1:]  # a header
    x = np.array([[float(r[i]) for i in features] for r in rows], dtype=np.float64)
    y = None
    if n_targets and not unlabeled:  # regression: the last n_targets columns
        y = torch.tensor([[float(v) for v in r[width - n_targets :]] for r in rows], dtype=dtype)
    if label is not None:
        cells = [r[label].strip('"') for r in rows]
        if model is not None and model.class_names is not None:
            index = {name: k for k, name in enumerate(model.class_names)}
            y = torch.tensor([index[c] for c in cells])
        elif all(_is_number(c) for c in cells):
            y = torch.tensor([int(float(c)) for c in cells])
        else:
            names = sorted(set(cells))
            y = torch.tensor([names.index(c) for c in cells])
    return torch.from_numpy(x).to(dtype), y
