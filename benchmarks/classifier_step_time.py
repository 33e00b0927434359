"""Seconds per optimiser step of the CaloChallenge classifier, and what a suite costs from it.

    .venv/bin/python benchmarks/classifier_step_time.py --steps 20 --threads 2 [--n 10000] \
        [--seeds 3] [--out steps.json]

Times ``--steps`` training steps (batch 1000, Adam, the 3 x 2048 network) and one selection pass
for the low-level input (6481 columns for siw) and the high-level one (362), on random inputs
(the cost does not depend on the values), on the CPU with ``--threads`` torch threads or on a GPU
(``--device cuda``). Then projects the classifiers' share of a full suite on N vs N showers at
the challenge budget: per level 50 epochs of ceil(1.2 N / 1000) steps, ``--seeds`` seeds, for the
comparison and the noise floor at the same size. The rest of the suite (observables, separation
powers, FPD, KPD) is measured by ``validation_suite.py --metrics`` without the classifiers.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from twinforge.showers.io import atomic_write_text
from twinforge.validation.classifier import ClassifierConfig, build_network


def time_steps(n_in: int, steps: int, device: str) -> tuple[float, float]:
    """(s per training step, s per selection pass over 0.4 N = 4000 showers)."""
    config = ClassifierConfig()
    model = build_network(n_in, config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.rand(config.batch_size, n_in, device=device)
    y = torch.randint(0, 2, (config.batch_size,), device=device).float()
    val = torch.rand(4000, n_in, device=device)

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(x).reshape(-1), y).backward()
        optimiser.step()

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    with torch.no_grad():
        model(val).sum().item()
    return per_step, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--n", type=int, default=10_000, help="showers per sample")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--low-inputs", type=int, default=6481)
    parser.add_argument("--high-inputs", type=int, default=362)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps_per_epoch = math.ceil(1.2 * args.n / 1000)
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "device": args.device,
        "threads": args.threads,
        "n": args.n,
    }
    total = 0.0
    for level, n_in in (("low", args.low_inputs), ("high", args.high_inputs)):
        per_step, per_eval = time_steps(n_in, args.steps, args.device)
        one = 50 * (steps_per_epoch * per_step + per_eval * args.n / 10_000)
        suite = 2 * args.seeds * one  # comparison + floor
        total += suite
        result[level] = {
            "s_per_step": per_step,
            "s_per_selection_pass": per_eval,
            "s_per_classifier": one,
            "s_in_suite": suite,
        }
        print(
            f"{level}: {per_step:.3f} s/step, {per_eval:.3f} s/selection pass; one "
            f"challenge classifier on {args.n} vs {args.n}: {one / 60:.1f} min; "
            f"{2 * args.seeds} in a suite: {suite / 60:.1f} min"
        )
    result["classifiers_in_suite_s"] = total
    print(f"classifiers of a full suite: {total / 60:.0f} min")
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
