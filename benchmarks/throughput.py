"""Deep Nash-Q throughput, side by side in one run (not a test).

    python benchmarks/throughput.py [--iterations 60] [--seconds 3] [--json OUT]

All on this machine, in one process per figure family, one Ray instance:

- **training**: env steps/s of ``NashQ.train()`` (one env runner, the learner on the driver with
  the cores left, as ``nashrl train`` runs it), after 20 warm-up iterations, start-up excluded;
  for the shipped Cournot duopoly and Calvano logit configs with RLlib's episode sampler
  (``sampler: episodes``, the path before vectorised markets), the vector sampler as shipped, and
  the vector sampler with ``copies`` market copies per runner and ``updates_per_iteration`` scaled
  by the same factor (the replay ratio -- gradient steps of ``train_batch_size`` per env step --
  is the config's in every row);
- **sampling**: env steps/s of one env runner's ``sample()`` alone (the module acting with
  exploration, one thread), RLlib's episode runner against the vector runner at several K;
- **learner**: milliseconds per gradient step of ``train_batch_size``: RLlib's ``Learner.update``
  minibatch loop, nashrl's ``NashQTorchLearner.learn``, and the compute floor (the same network's
  forward, backward and Adam step alone, no targets), one thread;
- **runners**: sampling-only env steps/s (learning never starts) with 1 and 2 remote env runners of
  ``--runner-copies`` market copies each;
- **start-up**: seconds from ``build_algo()`` to the first result, and to ``stop()``.

``--address HOST:PORT`` measures only the env runners' scaling, on a running Ray cluster (e.g. two
local nodes: ``ray start --head --num-cpus=1 --port=6390`` then ``ray start --address=127.0.0.1:6390
--num-cpus=1``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from nashrl.algorithms.nash_q.nash_q import to_train_batch
from nashrl.algorithms.rllib_trainer import algorithm_config
from nashrl.config import load_config, validate
from nashrl.ray_session import start_local_ray
from nashrl.threads import set_thread_budget

GAMES = {"cournot_duopoly": "configs/cournot_duopoly.yaml", "calvano_logit": "configs/logit_bertrand_calvano.yaml"}


def variant(config: dict, sampler: str = "vector", copies: int | None = None, runners: int = 1) -> dict:
    config = copy.deepcopy(config)
    config["algorithm"]["sampler"] = sampler
    config["run"]["num_env_runners"] = runners
    if copies is not None:  # same replay ratio: updates scale with the env steps of an iteration
        factor = copies / config["run"]["num_envs_per_env_runner"]
        config["run"]["num_envs_per_env_runner"] = copies
        config["algorithm"]["updates_per_iteration"] = max(
            1, round(config["algorithm"].get("updates_per_iteration", 1) * factor)
        )
    return validate(config)


def sampled(result: dict) -> float:
    return float(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])


def training_rate(config: dict, iterations: int) -> float:
    algo = algorithm_config(config).build_algo()
    try:
        for _ in range(20):
            first = algo.train()
        start = time.perf_counter()
        for _ in range(iterations):
            last = algo.train()
        return (sampled(last) - sampled(first)) / (time.perf_counter() - start)
    finally:
        algo.stop()


def sampling_rate(config: dict, seconds: float) -> float:
    config = copy.deepcopy(config)
    config["run"]["num_env_runners"] = 0
    algo = algorithm_config(validate(config)).build_algo()
    try:
        set_thread_budget(1)
        runner = algo.env_runner_group.local_env_runner
        runner.sample()
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            out = runner.sample()
            steps += len(out["obs"]) if isinstance(out, dict) else sum(len(e) for e in out)
        return steps / (time.perf_counter() - start)
    finally:
        algo.stop()


def runner_rate(config: dict, runners: int, copies: int, iterations: int) -> float:
    """Sampling only (learning never starts): env steps/s of ``runners`` remote env runners."""
    config = copy.deepcopy(config)
    config["algorithm"]["num_steps_sampled_before_learning_starts"] = 10**9
    config["run"]["learner_threads"] = 1
    return training_rate(variant(config, copies=copies, runners=runners), iterations)


def learner_rates(config: dict, updates: int = 32, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per gradient step: RLlib's Learner.update, nashrl's learn, the compute floor."""
    config = copy.deepcopy(config)
    config["run"]["num_env_runners"] = 0
    config["algorithm"]["num_steps_sampled_before_learning_starts"] = 10**9  # fill the replay only
    algo = algorithm_config(validate(config)).build_algo()
    try:
        set_thread_budget(1)
        size = algo.config.train_batch_size
        while len(algo.replay) < 4 * size:
            algo.train()
        learner = algo.learner_group._learner
        timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}
        sample = algo.replay.sample(size * updates)
        batch = to_train_batch(sample)

        def best(f) -> float:
            f()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                f()
                times.append(time.perf_counter() - start)
            return 1e3 * min(times) / updates

        rllib = best(lambda: learner.update(batch=batch, minibatch_size=size, num_epochs=1, timesteps=timesteps))
        nashrl = best(lambda: learner.learn(sample, size, timesteps))
        net = copy.deepcopy(learner.module["nash_q"].unwrapped().q_net)
        optimizer = torch.optim.Adam(net.parameters(), fused=True)
        obs = torch.from_numpy(sample["obs"][:size])

        def floor() -> None:
            for _ in range(updates):
                optimizer.zero_grad(set_to_none=True)
                net(obs).square().mean().backward()
                optimizer.step()

        return {"rllib_update_ms": rllib, "nashrl_learn_ms": nashrl, "compute_floor_ms": best(floor)}
    finally:
        algo.stop()


def startup(config: dict) -> dict[str, float]:
    start = time.perf_counter()
    algo = algorithm_config(config).build_algo()
    built = time.perf_counter()
    algo.train()
    first = time.perf_counter()
    algo.stop()
    return {"build_s": built - start, "first_result_s": first - start, "stop_s": time.perf_counter() - first}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=60, help="timed training iterations per row")
    parser.add_argument("--seconds", type=float, default=3.0, help="sampling time per row")
    parser.add_argument("--copies", type=int, default=16, help="market copies per runner in the scaled rows")
    parser.add_argument("--runner-copies", type=int, default=128, help="market copies per runner, runner scaling")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--address", default=None, help="a running Ray cluster: measure only the env runners' scaling")
    args = parser.parse_args()

    import ray

    if args.address:
        ray.init(address=args.address, log_to_driver=False)
        from nashrl.markets import register_rllib_envs

        register_rllib_envs()
        for name, path in GAMES.items():
            config = load_config(path)
            rates = {r: round(runner_rate(config, r, args.runner_copies, args.iterations)) for r in (1, 2)}
            print(f"{name}, {len(ray.nodes())} nodes, K={args.runner_copies} per runner, sampling only: {rates}")
        return
    start_local_ray()
    from nashrl.markets import register_rllib_envs

    register_rllib_envs()
    out: dict = {"cpu_count": os.cpu_count(), "torch": torch.__version__}
    for name, path in GAMES.items():
        config = load_config(path)
        shipped = config["run"]["num_envs_per_env_runner"]
        ratio = config["algorithm"].get("updates_per_iteration", 1) / (
            config["algorithm"].get("rollout_fragment_length", 25) * shipped
        )
        rows = {
            "episodes (RLlib runner), as shipped": training_rate(variant(config, "episodes"), args.iterations),
            f"vector, as shipped (K={shipped})": training_rate(variant(config), args.iterations),
            f"vector, K={args.copies}": training_rate(variant(config, copies=args.copies), args.iterations),
        }
        sampling = {"episodes (RLlib runner)": sampling_rate(variant(config, "episodes"), args.seconds)}
        for k in (shipped, 16, 128, 1024):
            sampling[f"vector K={k}"] = sampling_rate(variant(config, copies=k), args.seconds)
        out[name] = {
            "updates_per_env_step": ratio,
            "training_env_steps_per_s": rows,
            "sampling_env_steps_per_s": sampling,
            "learner": learner_rates(config),
            "runners_sampling_only": {r: runner_rate(config, r, args.runner_copies, args.iterations) for r in (1, 2)},
            "startup": startup(variant(config)),
        }
        print(f"\n## {name} ({ratio:.3f} gradient steps of {config['algorithm']['train_batch_size']} per env step)")
        base = next(iter(rows.values()))
        print("| training | env steps/s | ratio |\n|---|---:|---:|")
        for label, rate in rows.items():
            print(f"| {label} | {rate:,.0f} | {rate / base:.2f} |")
        base = next(iter(sampling.values()))
        print("| sampling alone (1 thread) | env steps/s | ratio |\n|---|---:|---:|")
        for label, rate in sampling.items():
            print(f"| {label} | {rate:,.0f} | {rate / base:.2f} |")
        print("| learner (1 thread) | ms per gradient step |\n|---|---:|")
        for label, ms in out[name]["learner"].items():
            print(f"| {label} | {ms:.2f} |")
        scaling = {k: round(v) for k, v in out[name]["runners_sampling_only"].items()}
        print(f"env runners (K={args.runner_copies} each), sampling only (env steps/s): {json.dumps(scaling)}")
        print(f"start-up: {json.dumps({k: round(v, 2) for k, v in out[name]['startup'].items()})}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
