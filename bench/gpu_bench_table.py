#!/usr/bin/env python3
"""gpu_bench_table.py — one table from bench_gpu's and torch_bench.py's
lines (bench/README.md, "GPU benchmark against PyTorch").

usage: gpu_bench_table.py BENCH_GPU_LOG TORCH_LOG TABLE_FILE|FOLDER [--model MODEL_LOG]

Reads the "result ..." and "bandwidth ..." lines of both logs (either may
be missing or partial: what is absent shows as "-"), writes TABLE_FILE (or,
given a folder such as bench/results/, a Markdown file named for the date
and the GPU, DATE-GPUNAME-gpu-bench, in it)
and prints it. Per network, math mode and implementation: ms/step, samples/s,
TFLOP/s = 6 * params * batch / step time (forward 2, backward 4 flops per
weight and sample; the first layer's input delta, which neither computes,
is counted too), the speedup over PyTorch eager and PyTorch with CUDA
graphs (their ms/step over this row's), and the ratio of this row's time
to the GEMM floor. With --model (the model.* lines of bench/step_profile
--model), each backprop graphs row and each floor row also shows the cost
model's prediction for the GPU the benchmark ran on (H100 or H200, from its
name; both when it is neither) and the measured time over the predicted:
the first real runs correct the model. Then the issue's targets, each "met" or "missed" (or
"not measured"): benchmark goals, never asserted by a test.
"""
import os
import re
import sys
import time


def parse(path):
    results, bandwidth, notes = {}, [], []
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        return results, bandwidth, [f"{path}: {e.strerror}"]
    for line in lines:
        words = line.split()
        if not words:
            continue
        kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if words[0] == "result":
            try:
                key = (kv["net"], kv["math"], kv["impl"], kv["mode"])
                results[key] = (float(kv["ms_per_step"]), int(kv["batch"]),
                                float(kv["params"]), int(kv["steps"]))
            except (KeyError, ValueError):
                notes.append(f"unreadable line in {path}: {line}")
        elif words[0] == "bandwidth":
            bandwidth.append(kv)
        elif words[0] in ("gpu", "torch"):
            notes.append(line)
    return results, bandwidth, notes


def parse_model(path):
    """model.GPU.NET.MATH.KEY VALUE lines -> {(gpu, net, math, key): value}."""
    model = {}
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return model
    for line in lines:
        words = line.split()
        parts = words[0].split(".") if words else []
        if len(words) >= 2 and len(parts) == 5 and parts[0] == "model":
            try:
                model[tuple(parts[1:])] = float(words[1])
            except ValueError:
                pass
    return model


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def model_rows(res, model, notes):
    """The cost model (bench/README.md) next to the measured graphs step and
    GEMM floor of each network and math mode."""
    if not model:
        return []
    gpu = next((n[4:] for n in notes if n.startswith("gpu ")), "").lower()
    gpus = [g for g in ("h100", "h200") if g in gpu] or ["h100", "h200"]
    out = ["", "## The cost model against the measurement (bench/step_profile --model)", "",
           "| net | math | what | measured us | " + " | ".join(
               f"model {g} us | measured / model {g}" for g in gpus) + " |",
           "| --- | --- | --- | ---: | " + " | ".join("---: | ---:" for _ in gpus) + " |"]
    for net in ("a", "b", "c"):
        for math in ("fp32", "tf32", "bf16"):
            for what, key, rkey in (("step (graphs)", "step_us", ("backprop", "graphs")),
                                    ("GEMMs alone", "gemm_us", ("floor", "gemm"))):
                r = res.get((net, math) + rkey)
                us = r[0] * 1e3 if r else None
                cells = []
                for g in gpus:
                    m = model.get((g, net, math, key))
                    cells += [fmt(m, ".1f"), fmt(us / m if us and m else None, ".2f")]
                if us is None and all(c == "-" for c in cells):
                    continue
                out.append(f"| {net} | {math} | {what} | {fmt(us, '.1f')} | " + " | ".join(cells)
                           + " |")
    return out


def main():
    args = sys.argv[1:]
    model = {}
    if len(args) == 5 and args[3] == "--model":
        model = parse_model(args[4])
        args = args[:3]
    if len(args) != 3:
        print("usage: gpu_bench_table.py BENCH_GPU_LOG TORCH_LOG TABLE_FILE|FOLDER "
              "[--model MODEL_LOG]", file=sys.stderr)
        return 2
    ours, bw, notes = parse(args[0])
    torch, _, tnotes = parse(args[1])
    res = dict(ours)
    res.update(torch)
    out = ["# GPU training step: backprop against PyTorch and the GEMM floor", ""]
    out += [f"- {n}" for n in notes + tnotes]
    out += ["- TFLOP/s = 6 * params * batch / step time; speedup = PyTorch's ms/step over "
            "the row's; floor = the row's ms/step over the same GEMMs alone through cuBLAS.",
            "- Networks: a 784-256-128-10 batch 128; b 4x256 batch 256; c 4x4096 batch 8192; "
            "relu, cross-entropy, SGD momentum 0.9. PyTorch bf16 = autocast.", ""]
    out += ["| net | math | impl | mode | ms/step | samples/s | TFLOP/s | vs torch eager "
            "| vs torch graphs | / floor |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    order = {"backprop": 0, "torch": 1, "floor": 2}
    maths = ["fp32", "tf32", "bf16", "bf16-mixed", "16-mixed"]
    keys = sorted(res, key=lambda k: (k[0], maths.index(k[1]) if k[1] in maths else 9,
                                      order.get(k[2], 9), k[3]))
    for k in keys:
        net, math, impl, mode = k
        ms, batch, params, _ = res[k]
        te = res.get((net, math, "torch", "eager"))
        tg = res.get((net, math, "torch", "graphs"))
        fl = res.get((net, math, "floor", "gemm"))
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            net, math, impl, mode, fmt(ms, ".4f"), fmt(batch / ms * 1e3, ".0f"),
            fmt(6 * params * batch / (ms * 1e-3) / 1e12, ".2f"),
            fmt(te[0] / ms if te else None, ".2f"), fmt(tg[0] / ms if tg else None, ".2f"),
            fmt(ms / fl[0] if fl and impl != "floor" else None, ".3f")))
    out += model_rows(res, model, notes)
    out += ["", "## Targets (issue 8; goals, not tests)", ""]

    def verdict(ok):
        return "not measured" if ok is None else ("met" if ok else "missed")

    for math in ("fp32", "tf32", "bf16"):
        g = res.get(("b", math, "backprop", "graphs"))
        te = res.get(("b", math, "torch", "eager"))
        tg = res.get(("b", math, "torch", "graphs"))
        us = g[0] * 1e3 if g else None
        out.append(f"- b, {math}, graphs: {fmt(us, '.1f')} us/step <= 30 us: "
                   f"{verdict(None if g is None else us <= 30)}; "
                   f">= 5x PyTorch eager ({fmt(te[0] / g[0] if g and te else None, '.2f')}x): "
                   f"{verdict(None if not (g and te) else te[0] / g[0] >= 5)}; "
                   f">= 1.5x PyTorch graphs ({fmt(tg[0] / g[0] if g and tg else None, '.2f')}x): "
                   f"{verdict(None if not (g and tg) else tg[0] / g[0] >= 1.5)}")
    for math in ("fp32", "tf32", "bf16"):
        fl = res.get(("c", math, "floor", "gemm"))
        for mode in ("graphs", "eager"):
            r = res.get(("c", math, "backprop", mode))
            ratio = r[0] / fl[0] if r and fl else None
            out.append(f"- c, {math}, {mode}: {fmt(ratio, '.3f')}x the GEMM floor <= 1.10x: "
                       f"{verdict(None if ratio is None else ratio <= 1.10)}")
    copy = next((b for b in bw if b.get("kind") == "d2d_copy"), None)
    if copy:
        out.append(f"- device copy (cudaMemcpyAsync D2D, {int(copy['bytes']) >> 20} MiB, read + "
                   f"written): {float(copy['gbps']):.0f} GB/s")
    for b in bw:
        if b.get("kind") != "elementwise_est":
            continue
        share = float(b["gbps"]) / float(copy["gbps"]) if copy else None
        out.append(f"- element-wise kernels, c {b['math']} eager (step less floor: "
                   f"{float(b['non_gemm_ms']):.3f} ms for {float(b['bytes']) / 1e6:.0f} MB): "
                   f"{float(b['gbps']):.0f} GB/s, {fmt(share and 100 * share, '.0f')}% of the "
                   f"copy >= 80%: {verdict(None if share is None else share >= 0.8)}")
    if not any(b.get("kind") == "elementwise_est" for b in bw):
        out.append("- element-wise kernels >= 80% of the copy bandwidth: not measured")
    text = "\n".join(out) + "\n"
    path = args[2]
    if os.path.isdir(path):  # a folder: the date, the GPU's name, -gpu-bench, Markdown
        gpu = next((n[4:] for n in notes if n.startswith("gpu ")), "gpu")
        name = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-") or "gpu"
        path = os.path.join(path, f"{time.strftime('%Y-%m-%d', time.gmtime())}-{name}-gpu-bench.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
