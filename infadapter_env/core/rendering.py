"""The ``rgb_array`` render: a picture of the episode so far (arrivals against capacity, P99 latency
against the SLO), as a (height, width, 3) uint8 array for Gymnasium's ``RecordVideo`` and SB3."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

WIDTH_PX, HEIGHT_PX, DPI = 640, 400, 80


def episode_picture(
    arrivals: np.ndarray, infos: Sequence[dict[str, Any]], interval_s: int, slo_ms: float, names: Sequence[str]
) -> np.ndarray:
    """Arrivals per second and each variant's capacity (stacked), then each interval's P99 latency."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    ax_rate, ax_latency = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    seconds = len(infos) * interval_s
    if infos:
        edges = np.arange(len(infos) + 1) * interval_s
        capacity = np.array([i["capacity_rps"] for i in [*infos, infos[-1]]])
        ax_rate.stackplot(edges, capacity.T, labels=list(names), step="post", alpha=0.45)
        p99 = [i["latency_p99_ms"] for i in [*infos, infos[-1]]]
        ax_latency.step(edges, p99, where="post", color="tab:blue")
    ax_rate.plot(np.arange(seconds), arrivals[:seconds], color="black", linewidth=0.7)
    ax_rate.set_ylabel("req/s")
    if infos:
        ax_rate.legend(loc="upper left", fontsize=6, ncols=5)
    ax_latency.axhline(slo_ms, color="tab:red", linestyle="--", linewidth=0.8)
    ax_latency.set_ylabel("P99 ms")
    ax_latency.set_xlabel("time (s)")
    ax_latency.set_xlim(0, max(seconds, interval_s))
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
