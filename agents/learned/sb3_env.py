"""The batched ``InfAdapter-v0`` as a stable-baselines3 ``VecEnv``, so SB3 trains on it directly.

SB3 expects an ended episode to restart within the same step, with the last observation in
``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]``: the wrapped vector env runs in
Gymnasium's ``SAME_STEP`` autoreset mode and this class translates its dict-of-arrays infos.
``env_method("action_masks")`` serves sb3-contrib's MaskablePPO.

``PolicyFeatures`` appends features computed from the observation (``FEATURES``) to what the
policy sees; ``LearnedAgent`` computes the same ones when it plays, so a policy trained on them
plays in any env of its world.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
    VecEnvWrapper,
)

from infadapter_env.core.observation import observation_layout
from infadapter_env.core.vector_env import InfAdapterVectorEnv

# Features a policy may see beyond the env's observation, each computed from the observation alone.
# ``forecast``: the paper's LSTM forecast of the next minute's peak rate (req/s) from the 10 minute
# peaks of the observation, the forecast InfAdapter plans with (before its +10 % margin).
FEATURES = ("forecast",)


def policy_features(observations: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """(N, len(features)) features of a batch of observations (N, size) of any world."""
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown policy feature(s) {unknown}; valid: {', '.join(FEATURES)}")
    columns = []
    for _feature in features:  # only "forecast" so far
        from infadapter_agents.forecast.lstm import load_model

        peaks = np.asarray(observations, dtype=np.float32)[:, observation_layout().MINUTE_PEAKS]
        forecast = load_model()(peaks)
        columns.append(np.maximum(forecast, 0.0))
    return np.stack(columns, axis=1).astype(np.float32) if columns else np.zeros((len(observations), 0), np.float32)


class PolicyFeatures(VecEnvWrapper):
    """Appends ``policy_features`` to every observation of a VecEnv (terminal ones included)."""

    def __init__(self, venv: VecEnv, features: Sequence[str]) -> None:
        self.features = tuple(features)
        base = venv.observation_space
        assert isinstance(base, spaces.Box)
        policy_features(np.zeros((1, *base.shape), np.float32), self.features)  # names any unknown one
        high = np.concatenate([base.high, np.full(len(self.features), np.inf, dtype=np.float32)])
        low = np.concatenate([base.low, np.zeros(len(self.features), dtype=np.float32)])
        super().__init__(venv, observation_space=spaces.Box(low, high, dtype=np.float32))

    def _extend(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, policy_features(obs, self.features)], axis=1).astype(np.float32)

    def reset(self) -> VecEnvObs:
        return self._extend(np.asarray(self.venv.reset()))

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self._extend(info["terminal_observation"][None])[0]
        return self._extend(np.asarray(obs)), rewards, dones, infos


class InfAdapterSB3VecEnv(VecEnv):
    """``num_envs`` environments of one setting (the keyword arguments of ``gym.make("InfAdapter-v0")``)."""

    def __init__(self, num_envs: int, max_episode_steps: int | None = None, **env_kwargs: Any) -> None:
        if env_kwargs.get("reward_mode", "scalar") != "scalar":
            raise ValueError(
                "stable-baselines3 trains on scalar rewards: InfAdapterSB3VecEnv needs reward_mode='scalar'"
            )
        self.vector = InfAdapterVectorEnv(
            num_envs, autoreset_mode=AutoresetMode.SAME_STEP, max_episode_steps=max_episode_steps, **env_kwargs
        )
        super().__init__(num_envs, self.vector.single_observation_space, self.vector.single_action_space)
        self.metadata = self.vector.metadata
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seeds = [s if s is not None else None for s in self._seeds]
        obs, _ = self.vector.reset(seed=seeds if any(s is not None for s in seeds) else None)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async() first"
        obs, rewards, terminated, truncated, info = self.vector.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones).tolist():
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.vector.close()

    def action_masks(self) -> np.ndarray:
        return self.vector.action_masks()

    # SB3 asks these of its envs; this one env object stands for all of them.
    def _single(self, name: str) -> Any:
        """An attribute of one environment: the shared setting's (spaces, config, decoder, ...), else
        the batched env's (render_mode, metadata, spec)."""
        setting = self.vector.assembly
        return getattr(setting, name) if hasattr(setting, name) else getattr(self.vector, name)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [self._single(attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(
            f"the batched InfAdapter env has one setting for all environments; cannot set {attr_name!r}"
        )

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        rows = self._indices(indices)
        if method_name == "action_masks":
            masks = self.vector.action_masks()
            return [masks[i] for i in rows]
        return [self._single(method_name)(*args, **kwargs) for _ in rows]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
