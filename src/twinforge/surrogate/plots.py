"""Figures of a surrogate: its mean and uncertainty along each dimension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from twinforge.surrogate.base import Surrogate

__all__ = ["slice_figure"]


def slice_figure(model: Surrogate, output: str, reference: Mapping[str, Any] | None = None) -> Any:
    """A matplotlib figure: per free dimension, the mean ± 2 std (latent) of ``output`` along
    that dimension with the others held at ``reference`` (default: the training point with the
    lowest value), and the training points projected onto it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model._check_outputs([output])
    encoder = model._encoder()
    col = model.outputs.index(output)
    x_train, y_train = model._train["x"], model._train["y"][:, col]
    ref = x_train[int(np.argmin(y_train))].copy()
    if reference:
        base = encoder.decode(ref[None])
        base |= {k: np.atleast_1d(v) for k, v in reference.items()}
        ref = encoder.encode(base)[0]
    n = encoder.dim
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False, sharey=True)
    for i, (ax, dim) in enumerate(zip(axes[0], encoder.free, strict=True)):
        k = len(dim.values) if dim.values is not None else 200
        grid = np.repeat(ref[None], k, axis=0)
        grid[:, i] = np.arange(k) if dim.values is not None else np.linspace(0, 1, k)
        mean, var, _ = model.predict_encoded(grid)
        m, s = mean[:, col], np.sqrt(np.maximum(var[:, col], 0))
        values = encoder.decode(grid)[dim.name]
        xs = np.arange(k) if dim.values is not None else values.astype(float)
        train_x = encoder.decode(x_train)[dim.name]
        if dim.values is not None:
            ax.errorbar(xs, m, yerr=2 * s, fmt="o", color="C0", label="mean ± 2 std")
            ax.set_xticks(xs, [str(v) for v in dim.values])
            index = {str(v): j for j, v in enumerate(dim.values)}
            tx = np.asarray([index[str(v)] for v in train_x], dtype=float)
        else:
            ax.plot(xs, m, color="C0", label="mean")
            ax.fill_between(xs, m - 2 * s, m + 2 * s, color="C0", alpha=0.25, label="± 2 std")
            tx = train_x.astype(float)
            if dim.scale == "log":
                ax.set_xscale("log")
        ax.scatter(tx, y_train, s=6, color="k", alpha=0.4, label="training points")
        ax.set_xlabel(f"{dim.name} [{dim.unit}]" if dim.unit else dim.name)
    unit = model.units.get(output)
    axes[0][0].set_ylabel(f"{output} [{unit}]" if unit else output)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{model.name} surrogate of {output} ({model.n_train} points)", fontsize=9)
    fig.tight_layout()
    return fig
