"""ONNX export time, size, speed and parity of a flow on siw (random weights, no training data).

    .venv/bin/python benchmarks/onnx_export.py examples/train/flow-layerwise.yaml
    .venv/bin/python benchmarks/onnx_export.py examples/train/flow.yaml --traced-whole

Builds the training config's flow for the siw readout (45 layers x 144 voxels) with a transform
fitted on random showers, exports it (``--traced-whole``: the decode traced as one graph, what
export did before the flow's DecodeProgram, for comparison), and times ONNX Runtime against
PyTorch on the same noise (``--threads`` intra-op threads, batch ``--batch`` and 1), with the
relative difference of voxels above 0.1 MeV. Export time is the figure: the weights do not
change it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch
import yaml

from twinforge.detector.config import load_detector
from twinforge.inference import export_onnx, onnx_session, run_onnx
from twinforge.models import ShowerTransform, Surrogate, model_class


def surrogate(config: Path, seed: int = 0) -> Surrogate:
    binning = load_detector("siw").binning()
    options = yaml.safe_load(config.read_text())["model"]["config"]
    options["n_layers"] = binning.n_layers
    rng = np.random.default_rng(seed)
    showers = rng.exponential(0.1, (300, binning.n_voxels)) * (
        rng.random((300, binning.n_voxels)) < 0.3
    )
    energy = np.exp(rng.uniform(np.log(1e3), np.log(6.4e4), 300))
    transform = ShowerTransform(binning.n_voxels, kind="layers", threshold=0.01515, pdgs=[11],
                                layer_offsets=list(binning.offsets), dequantize=True)  # fmt: skip
    transform.fit(showers.astype(np.float32), energy)
    torch.manual_seed(seed)
    model = model_class("flow")(options, transform.n_features, transform.n_conditions).eval()
    return Surrogate(model, transform, binning.to_xml(), {"note": "benchmarks/onnx_export.py"})


def compare(sur: Surrogate, session: object, n: int, repeats: int) -> dict[str, object]:
    """ONNX Runtime against PyTorch at batch ``n`` on the same noise: ms per shower (mean of
    ``repeats`` calls after one warm-up) and quantiles of the relative difference of voxels
    above 0.1 MeV."""
    noise = sur.model.noise(n, torch.Generator().manual_seed(n)).numpy()
    energy = np.full(n, 1e4)
    out = run_onnx(session, noise, energy)  # type: ignore[arg-type]
    ref = sur.sample(energy, seed=n)  # the same noise (sample draws it from the seed)
    keep = (ref > 0.1) & (out > 0)
    rel = np.abs(out - ref)[keep] / ref[keep]
    times = {}
    for name, call in (("onnx", lambda: run_onnx(session, noise, energy)),  # type: ignore[arg-type]
                       ("torch", lambda: sur.sample(energy, seed=n))):  # fmt: skip
        call()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        times[f"{name}_ms_per_shower"] = 1e3 * (time.perf_counter() - start) / repeats / n
    quantiles = np.quantile(rel, [0.5, 0.99, 0.999, 1.0]).tolist() if rel.size else None
    return {**times, "rel_diff_quantiles_50_99_999_max": quantiles}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", type=Path, help="a flow training config")
    ap.add_argument("--traced-whole", action="store_true", help="trace the decode as one graph")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sur = surrogate(args.config)
    if args.traced_whole:
        sur.model.decode_program = lambda: None  # type: ignore[method-assign]
    with TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_onnx(sur, Path(tmp) / "model.onnx")
        export_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        session = onnx_session(path, threads=args.threads)
        result: dict[str, object] = {
            "config": str(args.config), "traced_whole": args.traced_whole,
            "threads": args.threads, "export_s": export_s, "onnx_mb": size_mb,
        }  # fmt: skip
        for n, repeats in ((args.batch, 3), (1, 10)):
            result[f"batch_{n}"] = compare(sur, session, n, repeats)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
