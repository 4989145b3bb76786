"""Cost of a learner update: Deep Nash-Q against RLlib's DQN, like with like (not a test).

    python benchmarks/learner_update.py [--config configs/cournot_duopoly.yaml] [--batch 256]
        [--updates 100] [--no-cache] [--search auto labels ...]

Both algorithms run on the same market with the same batch size, the same network, the same
double-Q setting (the Nash-Q config's, default off) and one thread; buffers are filled first.
Every timing includes turning the sampled data into the learner's tensors (RLlib's DQN: its
learner connector pipeline from episodes, inside ``learner_group.update``; Nash-Q: inside its
learner's ``learn``) and excludes sampling from the replay, timed apart. Rows:

- Deep Nash-Q, one gradient step per call of ``NashQTorchLearner.learn`` (as DQN: one update
  per call) and amortised over 32 steps per call (how training calls it);
- Deep Nash-Q through RLlib's ``Learner.update`` (the path remote learners take);
- independent DQN on Nash-Q's machinery (``independent_dqn``: the same runner, joint replay and
  learner, each firm's Q over its own actions), one step per call and 32 per call;
- RLlib DQN, one update of every firm's module per call, and per module (the total divided by
  the number of firms: DQN trains one module per firm on 256 of its own transitions, Nash-Q one
  module on 256 joint transitions with every firm's target).

``--no-cache`` empties Nash-Q's solution cache before every call, so every distinct next-state game
of the batch is solved (the cost in markets whose states rarely repeat); ``--search`` times Nash-Q
once per ``equilibrium_search`` setting.
"""

from __future__ import annotations

import argparse
import copy
import time

from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from nashrl.algorithms.nash_q.nash_q import MODULE_ID, to_train_batch
from nashrl.algorithms.registry import baseline_settings
from nashrl.algorithms.rllib_trainer import algorithm_config
from nashrl.config import load_config, validate
from nashrl.ray_session import start_local_ray
from nashrl.threads import set_thread_budget

TIMESTEPS = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}


def build(config: dict, name: str, batch: int, search: str = "auto"):
    config = copy.deepcopy(config)
    double_q = bool(config["algorithm"].get("double_q", False))
    if name == "nash_q":
        config["algorithm"]["equilibrium_search"] = search
    if name == "independent_dqn":
        config["algorithm"] = baseline_settings(name, config["algorithm"], config["run"])
    if name == "dqn":
        config["algorithm"] = {
            "name": "dqn",
            "gamma": config["algorithm"]["gamma"],
            "hiddens": config["algorithm"].get("hiddens", [64, 64]),
            "double_q": double_q,
        }
    config["algorithm"]["train_batch_size"] = batch
    config["algorithm"]["num_steps_sampled_before_learning_starts"] = 10**9  # fill only, no learning
    config["run"]["num_env_runners"] = 0
    algo = algorithm_config(validate(config)).build_algo()
    set_thread_budget(1)
    while True:
        result = algo.train()
        if result["env_runners"][NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 4 * batch:
            return algo


def time_nash_q(algo, batch: int, updates: int, cache: bool = True) -> dict[str, float]:
    """Milliseconds: sampling, one step per learn call, per step at 32 per call, RLlib's update, solver."""
    learner = algo.learner_group._learner
    solutions = learner.module[MODULE_ID].unwrapped()._solutions
    sample_s = single_s = rllib_s = solver_s = 0.0
    for _ in range(updates):
        if not cache:
            solutions.clear()
        t0 = time.perf_counter()
        sample = algo.replay.sample(batch)
        t1 = time.perf_counter()
        result = learner.learn(sample, batch, TIMESTEPS)
        t2 = time.perf_counter()
        if not cache:
            solutions.clear()
        learner.update(batch=to_train_batch(sample), timesteps=TIMESTEPS)
        t3 = time.perf_counter()
        sample_s += t1 - t0
        single_s += t2 - t1
        rllib_s += t3 - t2
        solver_s += float(result[MODULE_ID]["solver_seconds"])
    calls = max(1, updates // 32)
    start = time.perf_counter()
    for _ in range(calls):
        if not cache:
            solutions.clear()
        learner.learn(algo.replay.sample(32 * batch), batch, TIMESTEPS)
    amortised = (time.perf_counter() - start) / (32 * calls)
    scale = 1e3 / updates
    return {
        "sample_ms": sample_s * scale,
        "learn_one_ms": single_s * scale,
        "learn_amortised_ms": 1e3 * amortised,
        "rllib_update_ms": rllib_s * scale,
        "solver_ms": solver_s * scale,
    }


def time_dqn(algo, batch: int, updates: int) -> tuple[float, float]:
    sample_s = update_s = 0.0
    for _ in range(updates):
        t0 = time.perf_counter()
        episodes = algo.local_replay_buffer.sample(num_items=batch, n_step=1, gamma=algo.config.gamma)
        t1 = time.perf_counter()
        algo.learner_group.update(episodes=episodes, timesteps=TIMESTEPS)
        t2 = time.perf_counter()
        sample_s += t1 - t0
        update_s += t2 - t1
    return 1e3 * sample_s / updates, 1e3 * update_s / updates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="configs/cournot_duopoly.yaml")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--no-cache", action="store_true", help="solve every next-state game at every update")
    parser.add_argument("--search", nargs="+", default=["auto"], help="equilibrium_search settings to time")
    args = parser.parse_args()

    start_local_ray()
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()
    config = load_config(args.config)
    rows = []
    for search in args.search:
        nash = build(config, "nash_q", args.batch, search)
        time_nash_q(nash, args.batch, 5, cache=not args.no_cache)  # warm-up
        rows.append((search, time_nash_q(nash, args.batch, args.updates, cache=not args.no_cache)))
        nash.stop()
    independent = build(config, "independent_dqn", args.batch)
    time_nash_q(independent, args.batch, 5)
    idqn = time_nash_q(independent, args.batch, args.updates)
    independent.stop()
    dqn = build(config, "dqn", args.batch)
    firms = len(dqn.config.policies)
    time_dqn(dqn, args.batch, 5)
    d_sample, d_update = time_dqn(dqn, args.batch, args.updates)
    dqn.stop()
    cache = "off: every next-state game solved" if args.no_cache else "on"
    double_q = bool(config["algorithm"].get("double_q", False))
    print(
        f"market {config['market']['type']}, batch {args.batch}, {args.updates} timed updates each, one thread, "
        f"double-Q {double_q} for both, solution cache {cache}\n"
    )
    print("| | ms per update | replay sample (ms) | ratio to one DQN module's update |")
    print("|---|---:|---:|---:|")
    per_module = d_update / firms
    for search, t in rows:
        label = f"Deep Nash-Q (equilibrium_search={search})"
        print(
            f"| {label}, one step per learn call (targets {t['solver_ms']:.2f} ms) | {t['learn_one_ms']:.2f} | "
            f"{t['sample_ms']:.2f} | {t['learn_one_ms'] / per_module:.2f} |"
        )
        print(
            f"| {label}, amortised at 32 steps per call (training) | {t['learn_amortised_ms']:.2f} | | "
            f"{t['learn_amortised_ms'] / per_module:.2f} |"
        )
        print(
            f"| {label}, through RLlib's Learner.update | {t['rllib_update_ms']:.2f} | | "
            f"{t['rllib_update_ms'] / per_module:.2f} |"
        )
    name = "independent DQN on Nash-Q's machinery (one module, every firm's own Q)"
    print(
        f"| {name}, one step per learn call | {idqn['learn_one_ms']:.2f} | {idqn['sample_ms']:.2f} | "
        f"{idqn['learn_one_ms'] / per_module:.2f} |"
    )
    print(
        f"| {name}, amortised at 32 steps per call | {idqn['learn_amortised_ms']:.2f} | | "
        f"{idqn['learn_amortised_ms'] / per_module:.2f} |"
    )
    print(
        f"| RLlib DQN, all {firms} modules per call | {d_update:.2f} | {d_sample:.2f} | {d_update / per_module:.2f} |"
    )
    print(f"| RLlib DQN, per module (total / {firms}) | {per_module:.2f} | | 1.00 |")


if __name__ == "__main__":
    main()
