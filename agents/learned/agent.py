"""Policies learned with stable-baselines3: ``ppo``, ``ppo-weights``, ``ppo-forecast``, ``a2c``.

Trained by ``scripts/train_rl.py`` on windows of the training days (days 0-13) with the batched
env. A shipped agent's folder in ``agents/checkpoints/`` holds one checkpoint per training seed
(``seed0/``, ``seed1/``, ...) and ``agent.json``, which names the seed the agent plays (the best
by the mean objective on training-day windows, never by test results) and the per-seed scores;
``make("ppo", seed=1)`` plays another seed. A checkpoint folder holds the whole SB3 algorithm
(``model.zip``: ``PPO.load`` then ``.learn`` continues; older folders hold the policy only,
``policy.zip``, and still load), the observation normalisation (``vecnormalize.pkl``) and
``meta.json`` (the exact command, seed, versions, commit, training time and evaluation). The
policy acts in the action mode it was trained in (``cores`` for PPO and A2C, ``deployment`` with
masks for MaskablePPO); its action is decoded with the env's rules, but in its own action mode and
over-budget rule (``over_budget="scale"`` fits an action over the cores available, as in training),
and re-encoded for the env it plays in, so it runs in any mode.

What a policy sees: the env's observation, then (trained with ``observe_weights``) the objective's
weights alpha, beta, gamma, then the features of ``meta.json``'s ``features``
(``infadapter_agents.learned.sb3_env.FEATURES``: ``forecast``, the paper LSTM's forecast). The agent builds
that from the env it plays in: the weights from the env's observation where it carries them
(``observe_weights=True``), else from the reset info's settings, so a weights-observing policy plays
the leaderboard's default env at every beta.

Parameters: ``checkpoint`` (an agent's folder or one checkpoint folder), ``seed`` (with an
agent's folder: play that training seed), ``deterministic`` (True: the most likely action).
Simplification: a policy that does not observe the weights (``ppo``, ``a2c``) was trained at one
beta (see ``meta.json``) and is scored at every beta of the leaderboard all the same.

At reset the agent compares the env's settings with those it was trained in (``meta.json``'s
``env_settings``, or for older checkpoints the defaults with its ``train_env``): a world with other
variants (another observation) is refused; other physical settings (budget, SLO, cores, interval,
capacity model, dispatcher, ...) give a ``UserWarning`` that names them, because a policy outside
its training settings can act badly without any error (e.g. trained at 20 cores, its actions in a
10-core budget are over budget and rejected: it deploys nothing). The trace is not checked, nor
are the objective's weights for a policy that does not observe them (the leaderboard scores one
policy at every beta and window). A weights-observing policy is warned about weights it never saw
in training only: a beta outside the range of its training betas, another alpha or gamma.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np

from infadapter_agents.base import Agent, PlanningView
from infadapter_env.core.observation import observation_layout
from infadapter_env.core.settings import EnvSettings
from infadapter_env.world.profiles import UnsupportedWorld

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
AGENT_FILE = "agent.json"  # in an agent's folder: its seeds and the one it plays
WEIGHTS = ("alpha", "beta", "gamma")
# Settings a policy's training does not fix: the objective's weights (checked apart for a policy
# that observes them), the trace and its window, the action mode and the over-budget rule (the
# action is decoded with the training's and re-encoded for the env), how
# arrivals are drawn, what is returned, and whether the env observes the weights (the agent adds
# them where its policy needs them).
UNCHECKED_SETTINGS = frozenset(
    {*WEIGHTS, "betas", "observe_weights"}
    | {"scenario", "trace", "trace_column", "trace_resolution_s", "episode_length_s", "window_start_s", "skip_gaps"}
    | {"action_mode", "over_budget", "initial_cores", "reward_mode", "arrivals", "simulator", "backend", "ray_address"}
    | {"server_speed"}
)


def trained_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The env settings a checkpoint was trained in, from its ``meta.json``."""
    if "env_settings" in meta:
        return dict(meta["env_settings"])
    known = {name for name in EnvSettings.__dataclass_fields__ if name not in ("weights", "world")}
    given = {k: v for k, v in meta.get("train_env", {}).items() if k in known}
    return EnvSettings.from_kwargs(**given).recorded()


# The settings of a training that make its world's rules, which its evaluation plays under: what an
# action over the budget does, the cores available, the profile and variants of a world of one's own.
TRAINING_RULES = ("over_budget", "budget_trace", "profile", "variants")


def training_rules(checkpoint: str | Path) -> dict[str, Any]:
    """``TRAINING_RULES`` as the checkpoint's training set them (its ``meta.json``'s ``train_env``)."""
    trained_in = json.loads((Path(checkpoint) / "meta.json").read_text())["train_env"]
    return {key: trained_in[key] for key in TRAINING_RULES if key in trained_in}


def checkpoint_folder(folder: str | Path, seed: int | None = None) -> Path:
    """The checkpoint an agent's folder plays (``agent.json``'s choice, or training seed ``seed``),
    or ``folder`` itself where it is one checkpoint."""
    folder = Path(folder)
    if (folder / AGENT_FILE).is_file():
        chosen = json.loads((folder / AGENT_FILE).read_text())
        name = chosen["plays"] if seed is None else f"seed{seed}"
        if name not in chosen["seeds"]:
            raise ValueError(f"{folder} has no training seed {seed!r}; its seeds: {', '.join(chosen['seeds'])}")
        return folder / name
    if seed is not None:
        raise ValueError(f"{folder} is one checkpoint, not an agent's folder of seeds ({AGENT_FILE} missing)")
    return folder


class LearnedAgent(Agent):
    def __init__(self, checkpoint: str | Path, deterministic: bool = True, seed: int | None = None) -> None:
        agent_folder = Path(checkpoint)
        folder = checkpoint_folder(agent_folder, seed)
        if not (folder / "meta.json").is_file():
            raise FileNotFoundError(
                f"no trained policy in {folder} (meta.json missing); train one with: "
                f"infadapter train --algo {folder.name}"
            )
        self.meta = json.loads((folder / "meta.json").read_text())
        self.checkpoint = folder
        self.deterministic = deterministic
        if (folder / "model.zip").is_file():  # a whole SB3 algorithm (infadapter train writes these)
            self.policy = algorithm_class(self.meta["algo"]).load(str(folder / "model.zip"), device="cpu").policy
        else:  # a policy-only save (older checkpoints were made so)
            self.policy = _policy_class(self.meta["algo"]).load(str(folder / "policy.zip"), device="cpu")
        self.policy.set_training_mode(False)
        with (folder / "vecnormalize.pkl").open("rb") as handle:
            self.normaliser = pickle.load(handle)
        self.normaliser.training = False
        self.name = agent_folder.name
        self.own_mode = self.meta["action_mode"]
        self.trained = trained_settings(self.meta)
        self.observes_weights = bool(self.trained.get("observe_weights", False))
        self.observes_budget = self.trained.get("budget_trace") is not None  # the cores available
        self.own_over_budget = str(self.trained.get("over_budget", "reject"))
        self.features: tuple[str, ...] = tuple(self.meta.get("features", ()))

    @property
    def uses_weights(self) -> bool:  # type: ignore[override]
        """A policy acts on the weights only if it observes them (else it is scored at every beta
        from one episode)."""
        return self.observes_weights

    def reset(self, info: Mapping[str, Any]) -> None:
        super().reset(info)
        self.check_settings(info)
        # the action is read with the rules it was trained under (its action mode, its over-budget
        # rule), then re-encoded for this env: the env's own over-budget rule never sees it over budget
        own = dict(self.settings.raw) | {"action_mode": self.own_mode, "over_budget": self.own_over_budget}
        self.own = PlanningView.from_info({"settings": own})

    def input_size(self, n_variants: int) -> int:
        """Entries of the policy's input in a world of ``n_variants`` variants."""
        return (
            observation_layout(n_variants).size
            + (len(WEIGHTS) if self.observes_weights else 0)
            + int(self.observes_budget)
            + len(self.features)
        )

    def check_settings(self, info: Mapping[str, Any]) -> None:
        """Refuse a world of other variants; warn about other physical settings, and a weights-observing
        policy about weights it never saw (module docstring)."""
        trained = self.trained
        trained_world = EnvSettings.from_kwargs(**{k: trained.get(k) for k in ("profile", "variants")}).world
        expected = self.normaliser.obs_rms.mean.shape[-1]
        size = self.input_size(self.settings.n_variants)
        if trained_world.names != self.settings.variants or size != expected:
            raise UnsupportedWorld(
                f"learned agent {self.name!r} was trained on variants {list(trained_world.names)} "
                f"({expected} policy input entries) and cannot act on variants {list(self.settings.variants)} "
                f"({size} entries): train one in this world (infadapter train --help)"
            )
        now = dict(self.settings.raw)
        # a setting a checkpoint does not record did not exist yet: it trained with its default
        defaults = {f.name: f.default for f in fields(EnvSettings) if f.init and f.default is not MISSING}
        then = {key: trained.get(key, defaults.get(key)) for key in set(trained) | set(now)}
        differ = sorted(
            key
            for key in then
            if key not in UNCHECKED_SETTINGS and key != "sim_version" and _plain(then[key]) != _plain(now.get(key))
        )
        changes = [f"{key}={now.get(key)!r} (trained: {then[key]!r})" for key in differ]
        if self.observes_weights:
            changes += self.unseen_weights(trained)
        if changes:
            warnings.warn(
                f"learned agent {self.name!r} plays outside the settings it was trained in: {', '.join(changes)}; "
                "its actions may be rejected or poor",
                UserWarning,
                stacklevel=3,
            )

    def unseen_weights(self, trained: Mapping[str, Any]) -> list[str]:
        """The weights of this episode a weights-observing policy never saw in training."""
        weights = self.settings.weights
        betas = trained.get("betas") or [trained.get("beta")]
        out = []
        if not min(betas) <= weights.beta <= max(betas):
            out.append(f"beta={weights.beta!r} (trained: {min(betas)!r}..{max(betas)!r})")
        for key in ("alpha", "gamma"):
            if getattr(weights, key) != trained.get(key):
                out.append(f"{key}={getattr(weights, key)!r} (trained: {trained.get(key)!r})")
        return out

    def policy_input(self, observation: np.ndarray) -> np.ndarray:
        """What the policy sees (1, entries): the env's observation without any weights it carries,
        the weights if the policy observes them, the share of the budget available if it was
        trained with a ``budget_trace`` (all of it, 1, where the env has none), then its features."""
        obs = np.asarray(observation, dtype=np.float32)
        layout = self.settings.layout
        base = obs[: observation_layout(layout.n_variants).size]
        parts = [base]
        if self.observes_weights:
            if layout.observe_weights:
                parts.append(obs[[layout.ALPHA, layout.BETA, layout.GAMMA]])
            else:
                w = self.settings.weights
                parts.append(np.array([w.alpha, w.beta, w.gamma], dtype=np.float32))
        if self.observes_budget:
            share = obs[layout.AVAILABLE_CORES] if layout.observe_budget else 1.0
            parts.append(np.array([share], dtype=np.float32))
        row = np.concatenate(parts)[None]
        if self.features:
            from infadapter_agents.learned.sb3_env import policy_features

            row = np.concatenate([row, policy_features(row, self.features)], axis=1)
        return row.astype(np.float32)

    def act(self, observation: np.ndarray, info: Mapping[str, Any]) -> Any:
        normalised = self.normaliser.normalize_obs(self.policy_input(observation))
        available = self.settings.available_cores(observation)
        decoder = self.own.encoder()
        if self.own_mode == "deployment":  # MaskablePPO: the masks it trained with, for the cores available
            masks = decoder.masks(self.settings.budget_cores if available is None else available)
            action, _ = self.policy.predict(normalised, deterministic=self.deterministic, action_masks=masks[None])
        else:
            action, _ = self.policy.predict(normalised, deterministic=self.deterministic)
        own_action = action[0]
        previous_replicas = np.asarray(observation[self.settings.layout.REPLICAS], dtype=np.int64)[None]
        previous_cores = np.asarray(observation[self.settings.layout.CORES], dtype=np.int64)[None]
        values = np.asarray([decoder.check(own_action)], dtype=np.int64)
        budget = None if available is None else np.array([available])
        replicas, cores, _, _ = decoder.decode_batch(values, previous_replicas, previous_cores, budget)
        return self.settings.action(replicas[0], cores[0])


def _plain(value: Any) -> Any:
    """A setting as JSON holds it (tuples as lists), so a recorded setting equals its reading from meta.json."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def algorithm_class(algo: str) -> Any:
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


SHIPPED = ("ppo", "ppo-weights", "ppo-forecast", "a2c")  # the registry's learned agents


def learned_agent(name: str) -> Any:
    """Factory for the registry: the shipped agent of that name (its folder of seeds)."""

    def make(**options: Any) -> LearnedAgent:
        return LearnedAgent(options.pop("checkpoint", CHECKPOINTS / name), **options)

    return make
