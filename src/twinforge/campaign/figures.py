"""Figures of a campaign from its journal: how an adaptive campaign's predicted error fell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from twinforge.catalog import JobRecord
from twinforge.errors import TwinforgeError

__all__ = ["error_curve", "error_figure"]


def error_curve(jobs: Sequence[JobRecord]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per output: (simulations done, the surrogate's predicted RMSE then), in the order the
    jobs finished.

    Raises:
        TwinforgeError: no job recorded a predicted error (not an adaptive campaign, or not
            far enough yet).
    """
    done = [j for j in jobs if j.state == "done" and "predicted_error" in (j.provenance or {})]
    if not done:
        raise TwinforgeError("no job of this campaign recorded a predicted error (an adaptive "
                             "campaign records one after each job)")  # fmt: skip
    done.sort(key=lambda j: (j.finished_at is None, j.finished_at, j.key))
    finished = [j for j in jobs if j.state == "done"]
    finished.sort(key=lambda j: (j.finished_at is None, j.finished_at, j.key))
    total = np.cumsum([int(j.provenance.get("n_points", 1)) for j in finished])
    at = {j.key: total[i] for i, j in enumerate(finished)}
    names = sorted({k for j in done for k in j.provenance["predicted_error"]})
    return {
        name: (np.asarray([at[j.key] for j in done if name in j.provenance["predicted_error"]]),
               np.asarray([j.provenance["predicted_error"][name] for j in done
                           if name in j.provenance["predicted_error"]]))
        for name in names
    }  # fmt: skip


def error_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> Any:
    """One panel per output: predicted RMSE against simulations (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for ax, (name, (n, err)) in zip(axes[0], curves.items(), strict=True):
        ax.plot(n, err, marker=".", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("simulations")
        ax.set_ylabel(f"predicted RMSE of {name}")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
