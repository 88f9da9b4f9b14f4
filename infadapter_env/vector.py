"""``InfAdapter-v0`` for N environments stepped together in array operations.

    envs = gym.make_vec("InfAdapter-v0", num_envs=1024, vectorization_mode="vector_entry_point")

The same world as the scalar ``InfAdapterEnv`` (its docstring is the spec): for the same seeds and
actions it gives the same observations, rewards and episode ends as
``gym.make_vec(..., vectorization_mode="sync")`` (``tests/test_vector.py``). Environment ``i`` of
``reset(seed=s)`` is seeded with ``s + i``, as ``SyncVectorEnv`` does. Autoreset follows
Gymnasium's ``NEXT_STEP`` mode by default (``SAME_STEP`` on request: then ``info["final_obs"]``
holds the last observation of an ended episode). ``info`` holds the scalar env's numeric metrics as
arrays, per-variant ones as (N, 5) arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from infadapter_env import observation as layout
from infadapter_env.batched import ArrivalsBatch, BatchState, deploy_batch, simulate_interval_batch
from infadapter_env.env import InfAdapterEnv, minute_peaks, with_history
from infadapter_env.objective import average_accuracy_batch, loading_cost_batch, objective_value, resource_cost
from infadapter_env.rows import row_sum
from infadapter_env.traces import HISTORY_S, Trace

FIXES = np.array([None, "raised_to_min_cores", "over_budget_kept_previous"], dtype=object)


class InfAdapterVectorEnv(VectorEnv):
    """N copies of ``InfAdapter-v0`` with one set of settings (the keyword arguments of ``gym.make``)."""

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.template = InfAdapterEnv(**kwargs)  # validates the settings; holds spaces, profile, source
        self.config = self.template.config
        self.profile = self.template.profile
        self.decoder = self.template.decoder
        self.num_envs = num_envs
        self.single_observation_space = self.template.observation_space
        self.single_action_space = self.template.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**self.template.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.n_steps = min(self.template.n_steps, max_episode_steps or self.template.n_steps)
        self._obs_high = self.template._obs_high
        self._accuracy = self.profile.accuracy
        self._load_time = self.profile.load_time_s
        n, interval = num_envs, self.config.interval_s
        # Larger than any arrival rate or total capacity, so that precomputed search keys stay valid.
        capacity_bound = self.config.replica_limit * float(self.profile.per_replica_rps.max()) * len(self._accuracy)
        self._spread = 2.0 * (max(float(self.template.source.arrivals.max()), capacity_bound) + 1.0)
        self._arrivals = ArrivalsBatch.of(np.zeros((self.n_steps, n, interval)), self._spread)
        # The whole trace or a fixed window is the same episode in every environment, every time:
        # prepared once here instead of at every reset.
        self._fixed_episode = self.config.episode_length_s is None or self.config.window_start_s is not None
        self._minute_peaks = np.zeros((n, self.n_steps + 1, layout.HISTORY_MINUTES))
        self._trace_start = np.zeros(n, dtype=np.int64)
        self._history_minutes = np.zeros(n, dtype=np.int64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n)]
        self._autoreset = np.zeros(n, dtype=bool)
        initial = self.template.initial_state()[0]
        self._initial = BatchState(*(np.repeat(getattr(initial, f)[None], n, axis=0) for f in BatchState.__slots__))
        self._state = self._initial
        self._obs = np.zeros((n, layout.SIZE), dtype=np.float32)
        if self._fixed_episode:
            self._prepare_episodes(np.arange(n), [self.template.draw_episode(self._rngs[0])])

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=None)
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"reset(seed=...) got {len(seed)} seeds for {self.num_envs} environments")
            seeds = list(seed)
        self._rngs = [seeding.np_random(s)[0] for s in seeds]
        self._reset_rows(np.arange(self.num_envs))
        self._autoreset[:] = False
        return self._obs.copy(), self._reset_info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        values = self.decoder.check_batch(actions, self.num_envs)
        n = self.num_envs
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        restarting = np.flatnonzero(self._autoreset & (self.autoreset_mode == AutoresetMode.NEXT_STEP))
        if len(restarting):
            self._reset_rows(restarting)
            live = np.flatnonzero(~self._autoreset)
            info = self._step_rows(live, values[live], rewards)
            truncated[live] = self._steps[live] >= self.n_steps
        else:
            info = self._step_rows(np.arange(n), values, rewards)
            truncated = self._steps >= self.n_steps
        if self.autoreset_mode == AutoresetMode.SAME_STEP and truncated.any():
            # Gymnasium's convention: the ended episodes' last observation and step info move to
            # final_obs / final_info; the top level carries their reset info.
            ended = np.flatnonzero(truncated)
            final_info = {key: value for key, value in info.items() if not key.startswith("_")}
            final_info |= {key: value & truncated for key, value in info.items() if key.startswith("_")}
            info = {key: value & ~truncated if key.startswith("_") else value for key, value in info.items()}
            info["final_obs"] = np.where(truncated[:, None], self._obs, 0.0).astype(np.float32)
            info["final_info"] = final_info
            info["_final_obs"] = info["_final_info"] = truncated.copy()
            self._reset_rows(ended)
            for key, value in self._reset_info().items():
                info[key] = value & truncated if key.startswith("_") else value
        else:
            self._autoreset = truncated.copy()
        return self._obs.copy(), rewards, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """(N, actions) allowed actions of the ``deployment`` mode: every deployment, for every env."""
        return np.broadcast_to(self.template.action_masks(), (self.num_envs, self.single_action_space.n)).copy()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ internals
    def _prepare_episodes(self, rows: np.ndarray, episodes: list[Trace]) -> None:
        """Arrivals, sorted forms, search keys and minute peaks of ``episodes`` into ``rows``
        (one episode per row, or a single episode for every row)."""
        cfg = self.config
        played = self.n_steps * cfg.interval_s
        joined = np.stack([with_history(episode, played) for episode in episodes])
        per_tick = joined[:, HISTORY_S:].reshape(len(episodes), self.n_steps, cfg.interval_s).swapaxes(0, 1)
        fresh = ArrivalsBatch.of(per_tick)
        for name in ("per_tick", "ascending", "tail_sums", "total", "peak"):
            getattr(self._arrivals, name)[:, rows] = getattr(fresh, name)
        assert self._arrivals.keys is not None
        self._arrivals.keys[:, rows] = self._arrivals.ascending[:, rows] + rows[:, None] * self._spread
        self._minute_peaks[rows] = minute_peaks(joined, self.n_steps + 1, cfg.interval_s)
        self._trace_start[rows] = [episode.start_s for episode in episodes]
        self._history_minutes[rows] = [episode.real_history_minutes for episode in episodes]

    def _reset_rows(self, rows: np.ndarray) -> None:
        cfg = self.config
        if not self._fixed_episode:
            self._prepare_episodes(rows, [self.template.draw_episode(self._rngs[i]) for i in rows.tolist()])
        self._steps[rows] = 0
        state = self._state
        fields = {}
        for name in BatchState.__slots__:  # type: ignore[attr-defined]
            column = getattr(state, name).copy()
            column[rows] = getattr(self._initial, name)[rows]
            fields[name] = column
        self._state = BatchState(**fields)
        obs = self._obs
        obs[rows] = 0.0
        obs[rows, layout.MINUTE_PEAKS] = self._minute_peaks[rows, 0]
        obs[rows, layout.CORES] = self._state.cores[rows]
        obs[rows, layout.REPLICAS] = self._state.replicas[rows]
        total_cores = (self._state.cores[rows] * self._state.replicas[rows]).sum(axis=1)
        obs[rows, layout.RESOURCE_COST] = resource_cost(total_cores, cfg.budget_cores)
        np.minimum(obs, self._obs_high, out=obs)

    def _step_rows(self, rows: np.ndarray, values: np.ndarray, rewards: np.ndarray) -> dict[str, Any]:
        cfg = self.config
        full = self._state
        state = full if rows.size == self.num_envs else full.select(rows)
        replicas, cores, fix = self.decoder.decode_batch(values, state.replicas, state.cores)
        if np.array_equal(replicas, state.replicas) and np.array_equal(cores, state.cores):
            lc = np.zeros(rows.size)  # nothing started or resized anywhere
        else:
            lc = loading_cost_batch(state.replicas, state.cores, replicas, cores, self._load_time)
        state = deploy_batch(state, replicas, cores, self.profile)
        arrivals = self._arrivals.take(rows, self._steps[rows])
        state, result = simulate_interval_batch(state, arrivals, cfg.dispatcher, cfg.queue_factor)
        if rows.size == self.num_envs:
            self._state = state
        else:
            fields = {}
            for name in BatchState.__slots__:  # type: ignore[attr-defined]
                column = getattr(full, name).copy()
                column[rows] = getattr(state, name)
                fields[name] = column
            self._state = BatchState(**fields)
        self._steps[rows] += 1
        steps = self._steps[rows]
        synchronised = rows.size == self.num_envs and steps.min() == steps.max()

        total = result.arrivals
        mean_rate = total / cfg.interval_s
        has_arrivals = total > 0
        divisor = np.where(has_arrivals, total, 1.0)
        aa_effective = result.in_slo @ self._accuracy / divisor
        if not has_arrivals.all():  # the AA of rate 0, as the scalar env scores an empty interval
            at_zero = average_accuracy_batch(state.target_capacity_rps, self._accuracy, np.zeros_like(total))
            aa_effective = np.where(has_arrivals, aa_effective, at_zero)
        violated = result.late + result.dropped
        violation_rate = np.where(has_arrivals, violated / divisor, 0.0)
        drop_rate = np.where(has_arrivals, result.dropped / divisor, 0.0)
        aa_planned = average_accuracy_batch(state.target_capacity_rps, self._accuracy, mean_rate)
        total_cores = row_sum(replicas * cores).astype(np.int64)
        rc = resource_cost(total_cores, cfg.budget_cores)
        weights = cfg.weights
        reward = objective_value(aa_effective, rc, lc, weights)
        rewards[rows] = reward
        utilisation = result.utilisation

        # Filled column block by column block, each converted to float32 on assignment, as the
        # scalar env converts its list.
        obs = np.empty((rows.size, layout.SIZE), dtype=np.float32)
        obs[:, layout.MINUTE_PEAKS] = (
            self._minute_peaks[:, int(steps[0])] if synchronised else self._minute_peaks[rows, steps]
        )
        obs[:, layout.MEAN_RATE] = mean_rate
        obs[:, layout.PEAK_RATE] = result.peak_rate_rps
        obs[:, layout.CORES] = cores
        obs[:, layout.REPLICAS] = replicas
        obs[:, layout.LOADING_LEFT] = state.loading_left_s
        obs[:, layout.UTILISATION] = utilisation
        obs[:, layout.BACKLOG] = state.backlog
        obs[:, layout.VIOLATION_RATE] = violation_rate
        obs[:, layout.DROP_RATE] = drop_rate
        obs[:, layout.RESOURCE_COST] = rc
        obs[:, layout.PROGRESS] = steps / self.n_steps
        np.minimum(obs, self._obs_high, out=obs)
        if rows.size == self.num_envs:
            self._obs = obs
        else:
            self._obs[rows] = obs

        n = self.num_envs
        info: dict[str, Any] = {}
        everyone = rows.size == n
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True

        def put(key: str, values: np.ndarray) -> None:
            if everyone:
                column = values
            else:
                column = np.zeros((n, *values.shape[1:]), dtype=values.dtype)
                column[rows] = values
            info[key], info[f"_{key}"] = column, mask

        put("step", steps)
        put("time_s", steps * cfg.interval_s)
        put("arrivals", total)
        put("mean_rate_rps", mean_rate)
        put("peak_rate_rps", result.peak_rate_rps)
        put("served_in_slo", row_sum(result.in_slo))
        put("violated", violated)
        put("late", result.late)
        put("dropped", result.dropped)
        put("lost_on_removal", result.lost)
        put("slo_violation_rate", violation_rate)
        put("drop_rate", drop_rate)
        put("aa_effective", aa_effective)
        put("aa_planned", aa_planned)
        put("rc", rc)
        put("lc", lc)
        put("cores", total_cores)
        put("reward", reward)
        put("objective_planned", objective_value(aa_planned, rc, lc, weights))
        put("replicas", replicas)
        put("cores_per_replica", cores)
        put("capacity_rps", state.target_capacity_rps)
        put("loading_left_s", state.loading_left_s)
        put("utilisation", utilisation)
        put("backlog", state.backlog)
        put("served_in_slo_by_variant", result.in_slo)
        put("action_fix", FIXES[fix])
        return info

    def _reset_info(self) -> dict[str, Any]:
        mask = np.ones(self.num_envs, dtype=bool)
        return {
            "trace_start_s": self._trace_start.copy(),
            "_trace_start_s": mask,
            "history_minutes": self._history_minutes.copy(),
            "_history_minutes": mask,
            "n_steps": np.full(self.num_envs, self.n_steps),
            "_n_steps": mask,
        }
