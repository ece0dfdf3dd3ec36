#!/usr/bin/env python3
"""Loads a model saved by `backprop train --save` into PyTorch (with
examples/backprop_torch.py: one call) and checks that PyTorch predicts what
backprop predicts.

usage: load_in_pytorch.py MODEL.safetensors DATA [PREDICTIONS.csv] [--unlabeled]

DATA is what `backprop predict --data` read: an IDX images file or a CSV
(scaled, columns and class names as the model says). PREDICTIONS.csv is
the output of `backprop predict --model MODEL --data DATA`; when given, the
probabilities and the classes are compared row by row.
"""
import csv
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backprop_torch  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if a != "--unlabeled"]
    if len(args) < 2:
        sys.exit(__doc__)
    model = backprop_torch.load(args[0])
    x, _ = backprop_torch.read_data(args[1], model, unlabeled="--unlabeled" in sys.argv)
    with torch.no_grad():
        probs = model(x).numpy()
    names = model.class_names
    predicted = probs.argmax(1) if probs.shape[1] > 1 else (probs[:, 0] > 0.5).astype(int)
    shown = [names[k] if names else int(k) for k in predicted[:10]]
    print(f"PyTorch: {model}")
    print(f"predicted classes of the first 10 samples: {shown}")
    if len(args) > 2:
        with open(args[2], newline="") as f:
            rows = list(csv.reader(f))[1:]
        classes = [r[0] for r in rows]
        theirs = np.array([[float(v) for v in r[1:]] for r in rows])
        ours = [str(names[k]) if names else str(int(k)) for k in predicted]
        diff = np.abs(theirs - probs).max()
        same = np.mean([a == b for a, b in zip(classes, ours)])
        print(f"max |p_backprop - p_torch| = {diff:.3g}; same class for {100 * same:.2f}% of samples")
        sys.exit(0 if diff < 1e-4 and same == 1.0 else 1)


if __name__ == "__main__":
    main()
