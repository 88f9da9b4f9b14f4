"""``InfAdapter-v0`` for N environments stepped together in array operations.

    envs = gym.make_vec("InfAdapter-v0", num_envs=1024, vectorization_mode="vector_entry_point")

The same world as the scalar ``InfAdapterEnv`` (its docstring is the spec): for the same seeds and
actions it gives the same observations, rewards and episode ends as
``gym.make_vec(..., vectorization_mode="sync")`` (``tests/core/test_vector.py``). Environment ``i`` of
``reset(seed=s)`` is seeded with ``s + i``, as ``SyncVectorEnv`` does. Autoreset follows
Gymnasium's ``NEXT_STEP`` mode by default (``SAME_STEP`` on request: then ``info["final_obs"]``
holds the last observation of an ended episode). ``info`` holds the scalar env's numeric metrics as
arrays, per-variant ones as (N, 5) arrays. With ``betas``, each environment draws its episode's
beta at every reset (its own generator, as the scalar env does; ``info["beta"]`` at reset) and its
rewards use it. ``threads`` (default: every core the process may use) splits the environments of a
step into blocks simulated side by side (``sim.fast.simulate_interval``; at least
``MIN_ENVS_PER_THREAD`` each); the numbers are the same on any number of threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from infadapter_env.core.assembly import EnvAssembly
from infadapter_env.core.observation import HISTORY_MINUTES
from infadapter_env.core.scalar_env import InfAdapterEnv
from infadapter_env.parallel import usable_cpus
from infadapter_env.sim.cluster import ClusterState, IntervalResult, QuotaPlan
from infadapter_env.world.traces import Trace


class InfAdapterVectorEnv(VectorEnv):
    """N copies of ``InfAdapter-v0`` with one set of settings (the keyword arguments of ``gym.make``)."""

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if threads is None:
            threads = len(usable_cpus())
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(
                f"threads must be a positive integer (None: every core this process may use), got {threads!r}"
            )
        self.threads = threads
        self.assembly = EnvAssembly(**kwargs)  # checks the settings; the spaces, profile, trace and pipeline
        self.settings = self.assembly.settings
        if self.settings.backend == "live":
            raise ValueError("the vector entry point simulates; backend='live' plays one env on real servers")
        if self.settings.simulator != "fast":
            raise ValueError(
                "the vector entry point runs the fast simulator only; for simulator='request' use "
                "gym.make_vec(..., vectorization_mode='sync') or the scalar env"
            )
        self.profile = self.assembly.profile
        self.decoder = self.assembly.decoder
        self.pipeline = self.assembly.pipeline
        self.num_envs = num_envs
        self.single_observation_space = self.assembly.observation_space
        self.single_action_space = self.assembly.action_space
        if self.settings.reward_mode == "vector":  # each environment's reward vector (MO-Gymnasium style)
            self.reward_space = self.assembly.reward_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**InfAdapterEnv.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.n_steps = min(self.assembly.n_steps, max_episode_steps or self.assembly.n_steps)
        n, interval = num_envs, self.settings.interval_s
        # Every interval of an episode step-major, (steps, N, ticks): one step of all envs is a view.
        self._per_tick = np.zeros((self.n_steps, n, interval))
        self._minute_peaks = np.zeros((n, self.n_steps + 1, HISTORY_MINUTES))
        self._trace_start = np.zeros(n, dtype=np.int64)
        self._history_minutes = np.zeros(n, dtype=np.int64)
        # Each environment's beta of this episode, drawn from ``betas`` at reset (None: the setting's).
        self._beta: np.ndarray | None = None if self.settings.betas is None else np.full(n, self.settings.beta)
        self._steps = np.zeros(n, dtype=np.int64)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n)]
        self._started = False  # step() before reset() is refused
        self._autoreset = np.zeros(n, dtype=bool)
        self._initial = self.assembly.initial_state(n)
        self._state = self._initial
        self._obs = np.zeros((n, self.pipeline.layout.size), dtype=np.float32)
        if self.assembly.fixed_episode:  # the same episode in every environment, every time: prepared once
            self._prepare_episodes(np.arange(n), [self.assembly.draw_episode(self._rngs[0])])

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
        self._started = True
        self._reset_rows(np.arange(self.num_envs))
        self._autoreset[:] = False
        return self._obs.copy(), self._reset_info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:  # as SyncVectorEnv refuses it
            raise ResetNeeded("InfAdapter-v0 (vector): call reset() before step()")
        values = self.decoder.check_batch(actions, self.num_envs)
        n = self.num_envs
        vector_reward = self.settings.reward_mode == "vector"
        rewards = np.zeros((n, 3), dtype=np.float32) if vector_reward else np.zeros(n)
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
        """(N, ...) the actions each environment allows for its coming interval (``InfAdapterEnv.action_masks``)."""
        cfg = self.settings
        coming = np.minimum(self._steps, self.n_steps - 1)
        available = cfg.available_cores(coming)
        if available is None:
            mask = self.decoder.masks(cfg.budget_cores)
            return np.broadcast_to(mask, (self.num_envs, mask.size)).copy()
        return np.stack([self.decoder.masks(int(cores)) for cores in available])

    # ------------------------------------------------------------------ internals
    def _prepare_episodes(self, rows: np.ndarray, episodes: list[Trace]) -> None:
        """Arrivals and minute peaks of ``episodes`` into ``rows`` (one episode per row, or a
        single episode for every row)."""
        self._per_tick[:, rows], self._minute_peaks[rows] = self.assembly.episode_arrays(episodes, self.n_steps)
        self._trace_start[rows] = [episode.start_s for episode in episodes]
        self._history_minutes[rows] = [episode.real_history_minutes for episode in episodes]

    def _reset_rows(self, rows: np.ndarray) -> None:
        if not self.assembly.fixed_episode:
            self._prepare_episodes(rows, [self.assembly.draw_episode(self._rngs[i]) for i in rows.tolist()])
        beta = None
        if self._beta is not None:  # after the window, from the same generator, as the scalar env draws
            self._beta[rows] = [self.assembly.draw_beta(self._rngs[i]) for i in rows.tolist()]
            beta = self._beta[rows]
        self._steps[rows] = 0
        self._state = self._state.put(rows, self._initial.select(rows))
        self._obs[rows] = self.pipeline.reset_observation(self._initial.select(rows), self._minute_peaks[rows, 0], beta)

    def _simulate(
        self, state: ClusterState, per_tick: np.ndarray, quotas: QuotaPlan | None = None
    ) -> tuple[ClusterState, IntervalResult]:
        """The fast model's interval for these rows, over the env's threads."""
        return self.pipeline.fast(state, per_tick, quotas, self.threads)

    def _step_rows(self, rows: np.ndarray, values: np.ndarray, rewards: np.ndarray) -> dict[str, Any]:
        everyone = rows.size == self.num_envs
        steps = self._steps[rows]
        synchronised = everyone and steps.min() == steps.max()
        if synchronised:
            step = int(steps[0])
            per_tick, peaks = self._per_tick[step], self._minute_peaks[:, step + 1]
        else:
            per_tick, peaks = self._per_tick[steps, rows], self._minute_peaks[rows, steps + 1]
        state = self._state if everyone else self._state.select(rows)
        beta = None if self._beta is None else self._beta[rows]
        state, reward, obs, report = self.pipeline.step(
            state, values, per_tick, peaks, steps + 1, self.n_steps, self._simulate, None, beta
        )
        self._steps[rows] = steps + 1
        rewards[rows] = reward
        if everyone:
            self._state, self._obs = state, obs
        else:
            self._state = self._state.put(rows, state)
            self._obs[rows] = obs
        n = self.num_envs
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        info: dict[str, Any] = {}
        for key, values_ in report.arrays().items():
            if everyone:
                column = values_
            else:
                column = np.zeros((n, *values_.shape[1:]), dtype=values_.dtype)
                column[rows] = values_
            info[key], info[f"_{key}"] = column, mask
        return info

    def _reset_info(self) -> dict[str, Any]:
        mask = np.ones(self.num_envs, dtype=bool)
        info = {
            "trace_start_s": self._trace_start.copy(),
            "_trace_start_s": mask,
            "history_minutes": self._history_minutes.copy(),
            "_history_minutes": mask,
            "n_steps": np.full(self.num_envs, self.n_steps),
            "_n_steps": mask,
        }
        if self._beta is not None:
            info |= {"beta": self._beta.copy(), "_beta": mask}
        return info
