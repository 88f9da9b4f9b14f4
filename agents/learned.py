"""Policies learned with stable-baselines3: ``ppo``, ``maskable-ppo``, ``a2c``.

Trained by ``scripts/train_rl.py`` on windows of the training days (days 0-13) with the batched
env; each checkpoint folder in ``agents/checkpoints/`` holds the policy (``policy.zip``, weights
only), the observation normalisation (``vecnormalize.pkl``) and ``meta.json`` (the exact command,
seed, versions, commit, training time and evaluation). The policy acts in the action mode it was
trained in (``cores`` for PPO and A2C, ``deployment`` with masks for MaskablePPO); its action is
decoded with the env's own rules and re-encoded for the env it plays in, so it runs in any mode.

Parameters: ``checkpoint`` (a folder), ``deterministic`` (True: the most likely action).
Simplification: trained at one beta (see ``meta.json``); the observation does not carry beta, so
the same policy is scored at every beta of the leaderboard.

At reset the agent compares the env's settings with those it was trained in (``meta.json``'s
``env_settings``, or for older checkpoints the defaults with its ``train_env``): a world with other
variants (another observation) is refused; other physical settings (budget, SLO, cores, interval,
capacity model, dispatcher, ...) give a ``UserWarning`` that names them, because a policy outside
its training settings can act badly without any error (e.g. trained at 20 cores, its actions in a
10-core budget are over budget and rejected: it deploys nothing). The objective's weights and the
trace are not checked: the leaderboard scores one policy at every beta and window.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_agents.base import Agent, EnvSettings
from infadapter_env.config import EnvConfig
from infadapter_env.profiles import UnsupportedWorld

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
# Settings a policy's training does not fix: the objective's weights, the trace and its window,
# the action mode (decoded and re-encoded), how arrivals are drawn and what is returned.
UNCHECKED_SETTINGS = frozenset(
    {"alpha", "beta", "gamma", "scenario", "trace", "trace_column", "episode_length_s", "window_start_s", "skip_gaps"}
    | {"action_mode", "initial_cores", "reward_mode", "arrivals", "simulator"}
)


def trained_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The env settings a checkpoint was trained in, from its ``meta.json``."""
    if "env_settings" in meta:
        return dict(meta["env_settings"])
    known = {name for name in EnvConfig.__dataclass_fields__ if name not in ("weights", "world")}
    given = {k: v for k, v in meta.get("train_env", {}).items() if k in known}
    return EnvConfig.from_kwargs(**given).recorded()


class LearnedAgent(Agent):
    uses_weights = False  # the policy does not observe the weights

    def __init__(self, checkpoint: str | Path, deterministic: bool = True) -> None:
        folder = Path(checkpoint)
        if not (folder / "meta.json").is_file():
            raise FileNotFoundError(
                f"no trained policy in {folder} (meta.json missing); train one with: "
                f"infadapter train --algo {folder.name}"
            )
        self.meta = json.loads((folder / "meta.json").read_text())
        self.deterministic = deterministic
        if (folder / "model.zip").is_file():  # a whole SB3 algorithm (infadapter train writes these)
            self.policy = _algorithm_class(self.meta["algo"]).load(str(folder / "model.zip"), device="cpu").policy
        else:  # a policy-only save (the shipped checkpoints were made so)
            self.policy = _policy_class(self.meta["algo"]).load(str(folder / "policy.zip"), device="cpu")
        self.policy.set_training_mode(False)
        with (folder / "vecnormalize.pkl").open("rb") as handle:
            self.normaliser = pickle.load(handle)
        self.normaliser.training = False
        self.name = folder.name
        self.own_mode = self.meta["action_mode"]

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.check_settings(info)
        own = dict(self.settings.raw) | {"action_mode": self.own_mode}
        self.own = EnvSettings.from_info({"settings": own})

    def check_settings(self, info: Mapping[str, Any]) -> None:
        """Refuse a world of other variants; warn about other physical settings (module docstring)."""
        trained = trained_settings(self.meta)
        trained_world = EnvConfig.from_kwargs(**{k: trained.get(k) for k in ("profile", "variants")}).world
        expected = self.normaliser.obs_rms.mean.shape[-1]
        if trained_world.names != self.settings.variants or self.settings.layout.size != expected:
            raise UnsupportedWorld(
                f"learned agent {self.name!r} was trained on variants {list(trained_world.names)} "
                f"({expected} observation entries) and cannot act on variants {list(self.settings.variants)} "
                f"({self.settings.layout.size} entries): train one in this world (infadapter train --help)"
            )
        now = dict(self.settings.raw)
        differ = sorted(
            key
            for key in set(trained) | set(now)
            if key not in UNCHECKED_SETTINGS and key != "sim_version" and trained.get(key) != now.get(key)
        )
        if differ:
            changes = ", ".join(f"{key}={now.get(key)!r} (trained: {trained.get(key)!r})" for key in differ)
            warnings.warn(
                f"learned agent {self.name!r} plays outside the settings it was trained in: {changes}; "
                "its actions may be rejected or poor",
                UserWarning,
                stacklevel=3,
            )

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        normalised = self.normaliser.normalize_obs(np.asarray(observation, dtype=np.float32)[None])
        action, _ = self.policy.predict(normalised, deterministic=self.deterministic)
        own_action = action[0]
        previous_replicas = np.asarray(observation[self.settings.layout.REPLICAS], dtype=np.int64)[None]
        previous_cores = np.asarray(observation[self.settings.layout.CORES], dtype=np.int64)[None]
        decoder = self.own.encoder()
        values = np.asarray([decoder.check(own_action)], dtype=np.int64)
        replicas, cores, _ = decoder.decode_batch(values, previous_replicas, previous_cores)
        return self.settings.action(replicas[0], cores[0])


def _algorithm_class(algo: str) -> Any:
    if algo == "maskable-ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    from stable_baselines3 import A2C, PPO

    return {"ppo": PPO, "a2c": A2C}[algo]


def _policy_class(algo: str) -> Any:
    if algo == "maskable-ppo":
        from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

        return MaskableActorCriticPolicy
    from stable_baselines3.common.policies import ActorCriticPolicy

    return ActorCriticPolicy


def learned_agent(name: str) -> Any:
    """Factory for the registry: the shipped checkpoint of that name."""

    def make(**options: Any) -> LearnedAgent:
        return LearnedAgent(options.pop("checkpoint", CHECKPOINTS / name), **options)

    return make
