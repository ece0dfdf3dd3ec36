#!/usr/bin/env python3
"""Loads a model saved by `backprop train --save` into PyTorch nn.Linear
layers and checks that PyTorch predicts what backprop predicts.

usage: load_in_pytorch.py MODEL.safetensors IMAGES-idx3-ubyte[.gz] [PREDICTIONS.csv]

PREDICTIONS.csv is the output of `backprop predict --model MODEL --data IMAGES`;
when given, the probabilities are compared row by row.
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch


def load_safetensors(path):
    """The safetensors format read by hand (safetensors.torch.load_file gives
    the same tensors where the safetensors package is installed)."""
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


def build_model(tensors, meta):
    acts = meta["activations"].split(",")
    slope = float(meta.get("leaky_slope", "0.01"))
    make = {
        "identity": lambda: torch.nn.Identity(),
        "sigmoid": lambda: torch.nn.Sigmoid(),
        "tanh": lambda: torch.nn.Tanh(),
        "relu": lambda: torch.nn.ReLU(),
        "leaky_relu": lambda: torch.nn.LeakyReLU(slope),
    }
    layers = []
    for i, act in enumerate(acts):
        w, b = tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers += [lin, make[act]()]
    model = torch.nn.Sequential(*layers)
    # backprop's outputs are the loss's probabilities.
    if meta["loss"] == "ce":
        model.append(torch.nn.Softmax(dim=1))
    elif meta["loss"] == "bce":
        model.append(torch.nn.Sigmoid())
    return model


def load_idx_images(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = struct.unpack(">" + "I" * rank, raw[4 : 4 + 4 * rank])
    pixels = np.frombuffer(raw[4 + 4 * rank :], dtype=np.uint8)
    return pixels.reshape(dims[0], -1).astype(np.float32) / 255.0


def main():
    tensors, meta = load_safetensors(sys.argv[1])
    model = build_model(tensors, meta)
    dtype = tensors["layers.0.weight"].dtype
    x = torch.from_numpy(load_idx_images(sys.argv[2])).to(dtype)
    with torch.no_grad():
        probs = model(x).numpy()
    print(f"PyTorch: {model}")
    print(f"predicted classes of the first 10 samples: {probs[:10].argmax(1).tolist()}")
    if len(sys.argv) > 3:
        theirs = np.loadtxt(sys.argv[3], delimiter=",", skiprows=1)
        classes, p = theirs[:, 0].astype(int), theirs[:, 1:]
        diff = np.abs(p - probs).max()
        same = (classes == probs.argmax(1)).mean()
        print(f"max |p_backprop - p_torch| = {diff:.3g}; same class for {100 * same:.2f}% of samples")
        sys.exit(0 if diff < 1e-4 and same == 1.0 else 1)


if __name__ == "__main__":
    main()
