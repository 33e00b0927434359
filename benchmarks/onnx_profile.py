"""Where an exported model's time goes: ONNX Runtime's per-operation profile at one batch size.

    .venv/bin/python benchmarks/onnx_profile.py models/siw-electrons-vae-par04 --threads 1
    .venv/bin/python benchmarks/onnx_profile.py model.onnx --batch 1000 --top 12 --out prof.json

Takes a model directory (exported in memory) or an ``.onnx`` file, runs ``--repeats`` calls at
batch ``--batch`` (energies 10 GeV, e-) after ``--warmup`` untimed ones with ``--threads``
intra-op threads, prints the median time per shower, then the kernel time of each node summed
over the timed calls, in microseconds per shower and in percent, largest first (a second
profiled session, its warm-up calls left out, so the profiler's own cost stays out of the
median). Pass ``--no-fold`` with
a model directory to see the graph as traced, before :mod:`twinforge.inference.fold`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort


def onnx_bytes(model: Path, fold: bool) -> bytes:
    """The ONNX file's bytes, or a model directory exported into memory."""
    if not model.is_dir():
        return model.read_bytes()
    from unittest import mock

    from twinforge.inference import export, export_onnx
    from twinforge.models import Surrogate

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        if fold:
            export_onnx(Surrogate.load(model), path)
        else:
            with mock.patch.object(export, "fold_linear_ops", return_value=0):
                export_onnx(Surrogate.load(model), path)
        return path.read_bytes()


def session(source: bytes, threads: int, profile: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = profile
    if profile:
        options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "twinforge-onnx-profile")
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def feeds(sess: ort.InferenceSession, n: int) -> dict[str, np.ndarray]:
    noise_shape = [d if isinstance(d, int) else n for d in sess.get_inputs()[0].shape]
    values = {
        "noise": np.random.default_rng(0).standard_normal(noise_shape).astype(np.float32),
        "energy": np.full(n, 1e4, np.float32),
        "pdg": np.full(n, 11, np.int64),
        "theta": np.zeros(n, np.float32),
        "phi": np.zeros(n, np.float32),
    }
    return {i.name: values[i.name] for i in sess.get_inputs()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path, help="model directory or .onnx file")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--no-fold", action="store_true", help="the graph as traced (directories)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    source = onnx_bytes(args.model, fold=not args.no_fold)

    plain = session(source, args.threads, profile=False)
    inputs = feeds(plain, args.batch)
    for _ in range(args.warmup):
        plain.run(None, inputs)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        plain.run(None, inputs)
        times.append(time.perf_counter() - start)
    median_us = float(np.median(times)) / args.batch * 1e6

    profiled = session(source, args.threads, profile=True)
    for _ in range(args.warmup + args.repeats):
        profiled.run(None, inputs)
    profile = Path(profiled.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e["name"] == "model_run")
    timed = runs[-args.repeats :]  # the calls after the warm-up
    kernels: Counter[tuple[str, str]] = Counter()
    for event in events:
        inside = any(a <= event["ts"] <= b for a, b in timed)
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and inside:
            node = event["name"].removesuffix("_kernel_time")
            kernels[(event["args"]["op_name"], node)] += event["dur"]  # us over all calls
    total = sum(kernels.values())
    per_shower = {k: v / args.repeats / args.batch for k, v in kernels.items()}
    print(f"{args.model}: batch {args.batch}, {args.threads} thread(s): median "
          f"{median_us:.1f} us per shower ({args.repeats} calls); kernels "
          f"{total / args.repeats / args.batch:.1f} us per shower")  # fmt: skip
    print("| op | node | us/shower | % |\n|---|---|---:|---:|")
    for (op, node), us in sorted(per_shower.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"| {op} | `{node}` | {us:.2f} | {100 * kernels[(op, node)] / total:.1f} |")
    if args.out is not None:
        ranked = sorted(per_shower.items(), key=lambda kv: -kv[1])
        rows = [{"op": op, "node": node, "us_per_shower": us} for (op, node), us in ranked]
        args.out.write_text(json.dumps(
            {"model": str(args.model), "batch": args.batch, "threads": args.threads,
             "folded": not args.no_fold, "median_us_per_shower": median_us, "kernels": rows},
            indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
