"""What one set of ``gym.make("InfAdapter-v0", ...)`` keyword arguments builds, for the scalar env
and the batched env alike: the checked settings, the capacity profile, the source trace, the
spaces, the action decoder, the step pipeline, how an episode's trace, beta and first cluster
state are drawn, and what the step reads of an episode (its arrivals, the minute peaks it shows).
Each env holds one ``EnvAssembly``; the batched env does not build a scalar env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from infadapter_env.core.actions import ActionDecoder, enumerate_deployments
from infadapter_env.core.observation import HISTORY_MINUTES, ObservationLayout
from infadapter_env.core.pipeline import StepPipeline, observation_high
from infadapter_env.core.settings import EnvSettings
from infadapter_env.sim.cluster import ClusterState, empty_state, loaded_state
from infadapter_env.world.profiles import CapacityProfile, load_profile
from infadapter_env.world.traces import HISTORY_S, Trace, draw_window, valid_window_starts


class EnvAssembly:
    """One setting of ``InfAdapter-v0`` built from its keyword arguments (``EnvSettings.from_kwargs``
    checks them and names a bad one)."""

    def __init__(self, **kwargs: Any) -> None:
        self.settings = EnvSettings.from_kwargs(**kwargs)
        cfg = self.settings
        self.profile: CapacityProfile = load_profile(cfg.slo_ms, cfg.capacity_model, cfg.min_cores, world=cfg.world)
        self.layout: ObservationLayout = cfg.layout()
        self.source: Trace = cfg.source_trace().scaled(cfg.rate_multiplier)
        length = cfg.episode_length_s or self.source.length_s
        if (cfg.window_start_s or 0) + length > self.source.length_s:
            raise ValueError(
                f"episode_length_s {length} from window_start_s {cfg.window_start_s or 0} exceeds "
                f"trace {self.source.name!r} of {self.source.length_s} s"
            )
        self.n_steps = length // cfg.interval_s
        if self.n_steps < 1:
            raise ValueError(
                f"trace {self.source.name!r} ({length} s) is shorter than one interval ({cfg.interval_s} s)"
            )
        n_var = len(self.profile.variants)
        max_cores = cfg.max_cores_per_replica
        table = None
        self.action_space: spaces.Space
        if cfg.action_mode == "cores":
            self.action_space = spaces.MultiDiscrete([max_cores + 1] * n_var)
        elif cfg.action_mode == "replicas":
            self.action_space = spaces.MultiDiscrete([cfg.replica_limit + 1] * n_var + [max_cores + 1] * n_var)
        else:
            table = enumerate_deployments(n_var, cfg.min_cores, max_cores, cfg.budget_cores)
            self.action_space = spaces.Discrete(len(table))
        self.decoder = ActionDecoder(
            cfg.action_mode,
            n_var,
            cfg.min_cores,
            max_cores,
            cfg.replica_limit,
            cfg.budget_cores,
            table,
            cfg.over_budget,
        )
        peak = max(float(self.source.arrivals.max()), float(self.source.history.max(initial=0.0)), 1.0)
        high = observation_high(cfg, self.profile, peak)
        self.observation_space = spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        self.reward_space: spaces.Box | None = None
        if cfg.reward_mode == "vector":  # MO-Gymnasium's convention: the bounds of the reward vector
            self.reward_space = spaces.Box(
                np.array([0.0, -1.0, -1.0], dtype=np.float32), np.array([1.0, 0.0, 0.0], dtype=np.float32)
            )
        self.pipeline = StepPipeline(cfg, self.profile, self.decoder, high)
        self._window_starts: np.ndarray | None = None  # computed at the first draw of a window

    @property
    def fixed_episode(self) -> bool:
        """Whether every episode plays the same trace: the whole source or a fixed window."""
        return self.settings.episode_length_s is None or self.settings.window_start_s is not None

    def draw_episode(self, rng: np.random.Generator) -> Trace:
        """The episode's trace: the whole source, the fixed window, or a window drawn with ``rng``."""
        cfg = self.settings
        if cfg.episode_length_s is None:
            return self.source
        if cfg.window_start_s is not None:
            return self.source.window(cfg.window_start_s, cfg.episode_length_s)
        if self._window_starts is None:
            self._window_starts = valid_window_starts(self.source, cfg.episode_length_s, cfg.skip_gaps)
        return draw_window(self.source, cfg.episode_length_s, rng, cfg.skip_gaps, self._window_starts)

    def draw_beta(self, rng: np.random.Generator) -> float | None:
        """The episode's beta, drawn with ``rng`` from ``betas`` (None without ``betas``)."""
        betas = self.settings.betas
        return None if betas is None else betas[int(rng.integers(len(betas)))]

    def episode_arrays(self, episodes: list[Trace], n_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """What the step reads of the first ``n_steps`` intervals of each of ``episodes``: the
        arrivals of every second, (n_steps, len(episodes), interval_s), and the observation's
        minute peaks at every decision point, (len(episodes), n_steps + 1, 10)."""
        interval = self.settings.interval_s
        joined = np.stack([with_history(episode, n_steps * interval) for episode in episodes])
        per_tick = joined[:, HISTORY_S:].reshape(len(episodes), n_steps, interval).swapaxes(0, 1)
        return per_tick, decision_minute_peaks(joined, n_steps + 1, interval)

    def initial_state(self, n_envs: int) -> ClusterState:
        """Empty clusters, or ``initial_cores`` (one replica each) loaded and serving at t = 0."""
        n_var = len(self.profile.variants)
        cores = self.settings.initial_cores
        if cores is None:
            return empty_state(n_envs, n_var)
        cores_arr = np.repeat(np.array([cores], dtype=np.int64), n_envs, axis=0)
        return loaded_state((cores_arr > 0).astype(np.int64), cores_arr)

    def encode_action(self, replicas: Any, cores: Any) -> Any:
        """The action of this setting's mode for a deployment (replicas and cores per variant)."""
        return self.decoder.encode(np.asarray(replicas), np.asarray(cores))


def with_history(episode: Trace, played_s: int) -> np.ndarray:
    """The 10 minutes before the episode (a short history repeats its first value) and the first
    ``played_s`` seconds of it, as one array."""
    history = episode.history[-HISTORY_S:]
    if history.size < HISTORY_S:
        pad_value = history[0] if history.size else episode.arrivals[0]
        history = np.concatenate([np.full(HISTORY_S - history.size, pad_value), history])
    return np.concatenate([history, episode.arrivals[:played_s]])


def decision_minute_peaks(joined: np.ndarray, n_points: int, interval_s: int) -> np.ndarray:
    """Per decision point (``n_points`` of them, every ``interval_s``), the peak rate of each of the
    10 minutes before it, oldest first. ``joined``: ``with_history`` arrays, (..., seconds)."""
    if 60 % interval_s == 0:
        # Minutes are whole numbers of intervals: maxima of interval blocks, then of block runs.
        usable = (joined.shape[-1] // interval_s) * interval_s
        blocks = joined[..., :usable].reshape(*joined.shape[:-1], -1, interval_s).max(axis=-1)
        per_minute = np.lib.stride_tricks.sliding_window_view(blocks, 60 // interval_s, axis=-1).max(axis=-1)
        index = np.arange(n_points)[:, None] + np.arange(HISTORY_MINUTES)[None, :] * (60 // interval_s)
        return per_minute[..., index]
    starts = np.arange(n_points)[:, None] * interval_s + np.arange(HISTORY_MINUTES)[None, :] * 60
    return joined[..., starts[..., None] + np.arange(60)].max(axis=-1)
