"""Cost of the equilibrium targets: one learner update of Nash-Q against RLlib's DQN (not a test).

    python benchmarks/learner_update.py [--config configs/cournot_duopoly.yaml] [--batch 256] [--updates 100]

Both algorithms run on the same market with the same batch size (B transitions per update;
DQN updates each firm's module on B of its own transitions, Nash-Q one module on B joint
transitions with every firm's target). The replay buffers are filled first, then
``learner_group.update`` is timed alone (buffer sampling excluded, reported apart). Prints
the mean time per update, the Nash-Q/DQN ratio, and the part of Nash-Q's update spent in
the stage-game solver. ``--no-cache`` empties Nash-Q's solution cache before every update,
so every distinct next-state game of the batch is solved (the cost in markets whose states
rarely repeat). ``--search auto labels ...`` times Nash-Q once per ``equilibrium_search``
setting (which equilibria the targets' selection chooses among, see
``nashrl.equilibrium.solve``).
"""

from __future__ import annotations

import argparse
import copy
import time

from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from nashrl.algorithms.nash_q.nash_q import MODULE_ID, to_train_batch
from nashrl.algorithms.rllib_trainer import algorithm_config
from nashrl.config import load_config, validate


def build(config: dict, name: str, batch: int, search: str = "auto"):
    config = copy.deepcopy(config)
    if name == "nash_q":
        config["algorithm"]["equilibrium_search"] = search
    if name == "dqn":
        config["algorithm"] = {
            "name": "dqn",
            "gamma": config["algorithm"]["gamma"],
            "hiddens": config["algorithm"].get("hiddens", [64, 64]),
        }
    config["algorithm"]["train_batch_size"] = batch
    config["algorithm"]["num_steps_sampled_before_learning_starts"] = 10**9  # fill only, no learning
    config["run"]["num_env_runners"] = 0
    algo = algorithm_config(validate(config)).build_algo()
    while True:
        result = algo.train()
        if result["env_runners"][NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 4 * batch:
            return algo


def time_nash_q(algo, batch: int, updates: int, cache: bool = True) -> tuple[float, float, float]:
    sample_s = update_s = solver_s = 0.0
    solutions = algo.learner_group._learner.module[MODULE_ID].unwrapped()._solutions
    for _ in range(updates):
        if not cache:
            solutions.clear()
        t0 = time.perf_counter()
        train_batch = to_train_batch(algo.replay.sample(batch))
        t1 = time.perf_counter()
        result = algo.learner_group.update(batch=train_batch, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 0})
        t2 = time.perf_counter()
        sample_s += t1 - t0
        update_s += t2 - t1
        solver_s += float(result[0]["nash_q"]["solver_seconds"]) if isinstance(result, list) else 0.0
    return sample_s / updates, update_s / updates, solver_s / updates


def time_dqn(algo, batch: int, updates: int) -> tuple[float, float]:
    sample_s = update_s = 0.0
    for _ in range(updates):
        t0 = time.perf_counter()
        episodes = algo.local_replay_buffer.sample(num_items=batch, n_step=1, gamma=algo.config.gamma)
        t1 = time.perf_counter()
        algo.learner_group.update(episodes=episodes, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 0})
        t2 = time.perf_counter()
        sample_s += t1 - t0
        update_s += t2 - t1
    return sample_s / updates, update_s / updates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="configs/cournot_duopoly.yaml")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--no-cache", action="store_true", help="solve every next-state game at every update")
    parser.add_argument("--search", nargs="+", default=["auto"], help="equilibrium_search settings to time")
    args = parser.parse_args()

    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()
    config = load_config(args.config)
    rows = []
    for search in args.search:
        nash = build(config, "nash_q", args.batch, search)
        time_nash_q(nash, args.batch, 5)  # warm-up
        rows.append((search, *time_nash_q(nash, args.batch, args.updates, cache=not args.no_cache)))
        nash.stop()
    dqn = build(config, "dqn", args.batch)
    time_dqn(dqn, args.batch, 5)
    d_sample, d_update = time_dqn(dqn, args.batch, args.updates)
    dqn.stop()
    cache = "off: every next-state game solved" if args.no_cache else "on"
    print(f"market {config['market']['type']}, batch {args.batch}, {args.updates} updates each, cache {cache}\n")
    print("| | learner update (ms) | replay sample (ms) | of which equilibrium targets (ms) | ratio to DQN update |")
    print("|---|---:|---:|---:|---:|")
    for search, n_sample, n_update, n_solver in rows:
        print(
            f"| Deep Nash-Q, equilibrium_search={search} | {1e3 * n_update:.2f} | {1e3 * n_sample:.2f} | "
            f"{1e3 * n_solver:.2f} | {n_update / d_update:.2f} |"
        )
    print(f"| RLlib DQN (independent, one module per firm) | {1e3 * d_update:.2f} | {1e3 * d_sample:.2f} | - | 1.00 |")


if __name__ == "__main__":
    main()
