#!/usr/bin/env python3
"""torch_bench.py — PyTorch's training step on the networks of
bench/bench_gpu.c, for the table of bench/gpu_bench_table.py (issue 8;
bench/README.md).

Networks: Linear+ReLU ... Linear (identity output), cross-entropy (mean),
torch.optim.SGD(lr=0.01, momentum=0.9), float32 parameters:
  a  784-256-128-10,           batch 128
  b  256-256-256-256-256,      batch 256
  c  4096-4096-4096-4096-4096, batch 8192
Math modes:
  fp32  torch.backends.cuda.matmul.allow_tf32 = False (exact FP32 GEMMs)
  tf32  torch.backends.cuda.matmul.allow_tf32 = True
  bf16  torch.autocast(dtype=torch.bfloat16) around the forward pass and
        the loss (float32 parameters, gradients and optimizer; the GEMMs
        take bfloat16 inputs and so do the activations they produce). The
        library's bf16 mode keeps float32 activations and rounds only the
        GEMMs' inputs, so autocast moves fewer bytes: a fair upper bound
        for PyTorch, not the same arithmetic.
  bf16-mixed  the same autocast: the row to compare with the library's
        bf16-mixed precision, which stores the same things in 16 bits.
        What autocast keeps in float32: the parameters (cast to bfloat16
        at each forward, with the cast cache off so that graphs replay),
        their gradients and the optimizer; the loss (cross_entropy and its
        log_softmax are on autocast's float32 list) and the output layer's
        gradient into it. Its Linear outputs, ReLUs and their gradients are
        bfloat16, as the library's hidden layers; the library also keeps
        the output layer's logits in float32, which autocast rounds.
  16-mixed  autocast with float16 and torch.cuda.amp.GradScaler
        (scale(loss).backward(), step, update). GradScaler.step reads
        found_inf on the host (.item()), so the step cannot be captured in
        a CUDA graph: eager only (the library's scaler runs on the device
        and is captured). Not on the CPU (torch's CPU autocast is bfloat16).
Modes:
  eager   each step: the rows of the batch gathered on the device from a
          device permutation (index_select), forward, loss, backward,
          optimizer.step(), optimizer.zero_grad(set_to_none=True); the loss
          is not read.
  graphs  the same step captured whole with torch.cuda.graph (warm-up of
          3 steps on a side stream first, as the PyTorch documentation on
          CUDA graphs says), the batch's row indices in a static tensor
          that each step fills with a device-to-device copy before replay.
Timing: torch.cuda.synchronize() before and after a run of steps, host
clock between; warm-up steps first.

Prints one line per measurement:
  result impl=torch net=a math=fp32 mode=eager batch=128 params=P steps=N ms_per_step=T
and "skip ..." lines for what cannot run (CUDA graphs on the CPU).

usage: torch_bench.py [--device cuda|cpu] [--nets a,b,c]
                      [--math fp32,tf32,bf16,bf16-mixed,16-mixed]
                      [--seconds S] [--max-steps N] [--quick]
--quick: small versions of the networks (a: batch 32; b: batch 64; c: 256
wide, batch 256) and a few steps: a smoke test of the script, e.g. on a
machine without a GPU (--device cpu --quick).
"""
import argparse
import contextlib
import sys
import time

import torch

NETS = {
    "a": ([784, 256, 128, 10], 128),
    "b": ([256] * 5, 256),
    "c": ([4096] * 5, 8192),
}
QUICK = {
    "a": ([784, 256, 128, 10], 32),
    "b": ([256] * 5, 64),
    "c": ([256] * 5, 256),
}


def build(sizes, device):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name, sizes, batch, math, mode, device, seconds, max_steps, min_steps):
    torch.manual_seed(1)
    model = build(sizes, device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    rows = batch * (2 if name == "c" else 16)
    x_all = torch.rand(rows, sizes[0], device=device)
    y_all = torch.randint(0, sizes[-1], (rows,), device=device)
    perm = torch.randperm(rows, device=device)
    n_batches = rows // batch
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = math == "tf32"
    if math in ("bf16", "bf16-mixed", "16-mixed"):
        half = torch.float16 if math == "16-mixed" else torch.bfloat16

        def autocast():  # no weight-cast cache: it would not survive graph capture
            return torch.autocast(device_type=device.type, dtype=half, cache_enabled=False)
    else:
        autocast = contextlib.nullcontext
    scaler = torch.cuda.amp.GradScaler() if math == "16-mixed" else None

    def step(idx):
        x = x_all.index_select(0, idx)
        y = y_all.index_select(0, idx)
        with autocast():
            loss = loss_fn(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)

    if mode == "eager":
        def run(i):
            k = i % n_batches
            step(perm[k * batch:(k + 1) * batch])
    else:
        static_idx = perm[:batch].clone()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                step(static_idx)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            x = x_all.index_select(0, static_idx)
            y = y_all.index_select(0, static_idx)
            with autocast():
                static_loss = loss_fn(model(x), y)
            static_loss.backward()
            opt.step()

        def run(i):
            k = i % n_batches
            static_idx.copy_(perm[k * batch:(k + 1) * batch])
            graph.replay()

    for i in range(5):  # warm-up
        run(i)
    sync(device)
    spent, steps = 0.0, 0
    while (spent < seconds or steps < min_steps) and steps < max_steps:
        chunk = min(n_batches, max_steps - steps)
        sync(device)
        t0 = time.perf_counter()
        for i in range(chunk):
            run(i)
        sync(device)
        spent += time.perf_counter() - t0
        steps += chunk
    print(f"result impl=torch net={name} math={math} mode={mode} batch={batch} "
          f"params={params} steps={steps} ms_per_step={1e3 * spent / steps:.6g}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--nets", default="a,b,c")
    ap.add_argument("--math", default="fp32,tf32,bf16,bf16-mixed,16-mixed")
    ap.add_argument("--seconds", type=float, default=0.25)
    ap.add_argument("--max-steps", type=int, default=20000)
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("torch_bench: torch.cuda.is_available() is False: no GPU for PyTorch "
              "(use --device cpu for a smoke test)", file=sys.stderr)
        return 1
    device = torch.device(a.device)
    nets = QUICK if a.quick else NETS
    seconds, max_steps = (0.0, 3) if a.quick else (a.seconds, a.max_steps)
    min_steps = min(a.min_steps, max_steps)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} device {gpu}", flush=True)
    failed = 0
    for name in a.nets.split(","):
        if name not in nets:
            print(f"torch_bench: --nets: unknown network '{name}' (a, b or c)", file=sys.stderr)
            return 2
        sizes, batch = nets[name]
        for math in a.math.split(","):
            if math not in ("fp32", "tf32", "bf16", "bf16-mixed", "16-mixed"):
                print(f"torch_bench: --math: unknown mode '{math}' (fp32, tf32, bf16, "
                      f"bf16-mixed or 16-mixed)", file=sys.stderr)
                return 2
            if math == "16-mixed" and device.type != "cuda":
                print(f"skip impl=torch net={name} math={math} (torch's CPU autocast is "
                      f"bfloat16 only)", flush=True)
                continue
            for mode in ("eager", "graphs"):
                if mode == "graphs" and device.type != "cuda":
                    print(f"skip impl=torch net={name} math={math} mode=graphs "
                          f"(CUDA graphs need a GPU)", flush=True)
                    continue
                if mode == "graphs" and math == "16-mixed":
                    print(f"skip impl=torch net={name} math={math} mode=graphs "
                          f"(GradScaler.step reads found_inf on the host)", flush=True)
                    continue
                try:
                    measure(name, sizes, batch, math, mode, device, seconds, max_steps,
                            min_steps)
                except RuntimeError as e:  # e.g. out of memory: the rest still run
                    print(f"torch_bench: net {name} {math} {mode}: {e}", file=sys.stderr)
                    failed += 1
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
