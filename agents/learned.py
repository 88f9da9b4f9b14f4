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
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_agents.base import Agent, EnvSettings
from infadapter_env import observation as layout

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


class LearnedAgent(Agent):
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
        own = dict(self.settings.raw) | {"action_mode": self.own_mode}
        self.own = EnvSettings.from_info({"settings": own})

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        normalised = self.normaliser.normalize_obs(np.asarray(observation, dtype=np.float32)[None])
        action, _ = self.policy.predict(normalised, deterministic=self.deterministic)
        own_action = action[0]
        previous_replicas = np.asarray(observation[layout.REPLICAS], dtype=np.int64)[None]
        previous_cores = np.asarray(observation[layout.CORES], dtype=np.int64)[None]
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
