r"""How sharply the capacity game's MPE determines each firm's investment (not a test).

For every state the MPE's *margin* for firm i is the payoff, in the MPE's own stage game, of its
equilibrium investment minus that of its best other investment (rivals at their MPE play). A
learner must resolve Q to that precision to reproduce the MPE's choice there. Prints the ergodic
mass of states whose smallest margin (over firms) is below each threshold, firm by firm, and the
most visited near-indifferent states:

    python benchmarks/capacity_margins.py configs/capacity_3firm.yaml

Then how many samples a learner needs to *see* a margin. A TD target of firm i after joint
investment x in state s is :math:`r_i + \delta V_i(s')` with :math:`s'` drawn from the transition
law, so even with the MPE's exact values it has the variance
:math:`\sigma^2_i(s, x) = \delta^2 \operatorname{Var}_{s' \mid s, x} V^*_i(s')`. Estimating the
equilibrium cell and the runner-up's by sample means, ordering them right at two standard errors
needs :math:`n \ge 4 (\sigma^2_{a^*} + \sigma^2_{b}) / m^2` targets in each cell. Beside it, the
targets a run gets in the runner-up's cell (``--env-steps`` at exploration ``--epsilon``, episodes of
``--episode-length`` periods from uniformly drawn states, played at the MPE): a tabular count that
ignores what a network shares between cells, an order of magnitude, not a bound.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a capacity market config")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.001, 0.01, 0.05, 0.1, 0.2, 0.5])
    parser.add_argument("--env-steps", type=float, default=800_000, help="env steps of the sample count")
    parser.add_argument("--epsilon", type=float, default=0.05, help="each firm's exploration rate then")
    parser.add_argument("--episode-length", type=int, default=10, help="periods per episode")
    parser.add_argument("--checkpoints", nargs="+", default=[], help="trained runs: how often each is right, by ratio")
    args = parser.parse_args()

    from nashrl.config import load_config
    from nashrl.markets import make_market
    from nashrl.theory.capacity import own_action_payoffs, solve_mpe

    market = make_market(load_config(args.config)["market"])
    mpe = solve_mpe(market)
    weights = mpe.ergodic(market)
    payoffs = own_action_payoffs(market, mpe.values, mpe.strategies)
    margins = np.stack([np.sort(p, axis=1)[:, -1] - np.sort(p, axis=1)[:, -2] for p in payoffs], axis=1)
    scale = np.abs(mpe.values).mean()
    print(f"MPE: {mpe.method}, converged {mpe.converged}; mean |value| {scale:.2f}; {len(weights)} states")
    print("| margin below (money) | relative to the mean abs value | ergodic mass, any firm | by firm |")
    print("|---:|---:|---:|---|")
    for t in args.thresholds:
        by_firm = ", ".join(f"{weights[margins[:, i] < t].sum():.3f}" for i in range(margins.shape[1]))
        print(f"| {t:g} | {t / scale:.1e} | {weights[margins.min(1) < t].sum():.3f} | {by_firm} |")
    print("\nmost visited states with a margin below 0.01: state, ergodic weight, MPE investments, margins")
    shown = 0
    for k in np.argsort(-weights):
        if margins[k].min() < 0.01 and shown < 8:
            invest = [float(market.grids[i][s.argmax()]) for i, s in enumerate(row[k] for row in mpe.strategies)]
            print(market.state_list[k], f"{weights[k]:.4f}", invest, np.round(margins[k], 5).tolist())
            shown += 1
    needed, available = samples_needed(market, mpe, payoffs, margins, args.env_steps, args.epsilon, args.episode_length)
    ratio = (needed / available).max(1)
    print(
        f"\ntargets per cell to order each firm's MPE investment against its runner-up (two standard"
        f" errors), against the runner-up cell's targets in {args.env_steps:,.0f} env steps at epsilon"
        f" {args.epsilon} (episodes of {args.episode_length} from uniform states)"
    )
    print("| needed / available, worst firm, at most | ergodic mass |")
    print("|---:|---:|")
    for t in (1, 10, 100, 1000):
        print(f"| {t:g} | {weights[ratio <= t].sum():.3f} |")
    order = np.argsort(ratio)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    covers = ", ".join(
        f"{share:.0%}: {ratio[order][np.searchsorted(cumulative, share)]:.3g}" for share in (0.5, 0.8, 0.9, 0.95)
    )
    print(f"needed / available to cover a share of the ergodic mass: {covers}")
    if args.checkpoints:
        _right_by_ratio(market, mpe, needed / available, weights, args.checkpoints)


def _right_by_ratio(market, mpe, ratio, weights, checkpoints) -> None:
    """How often the checkpoints' greedy investment is the MPE's, firm by firm and state by state,
    grouped by needed / available (weights: the MPE's ergodic distribution)."""
    from nashrl.analysis.report import load_policy
    from nashrl.checkpoints import experiment_of
    from nashrl.markets import make_market

    profile = np.stack([s.argmax(1) for s in mpe.strategies], axis=1)
    right = []
    for checkpoint in checkpoints:
        config, _ = experiment_of(checkpoint)
        policy, trained = load_policy(checkpoint, config), make_market(config["market"])  # its encoding
        acts = [policy.act(trained.observe(s).astype(np.float32), s) for s in market.state_list]
        right.append(np.array(acts) == profile)
    share_right = np.mean(right, axis=0)  # [S, N]
    mass = np.broadcast_to(weights[:, None], ratio.shape)
    print(f"\n{len(checkpoints)} runs: how often a firm's learned investment is the MPE's, by needed / available")
    print("| needed / available | firm-states | ergodic mass (summed over firms) | right, mass-weighted |")
    print("|---|---:|---:|---:|")
    edges = (0, 1, 10, 100, 1e3, 1e4, np.inf)
    for lo, hi in zip(edges[:-1], edges[1:]):
        cell = (ratio >= lo) & (ratio < hi)
        total = mass[cell].sum()
        share = (share_right[cell] * mass[cell]).sum() / total if total > 0 else float("nan")
        print(f"| [{lo:g}, {hi:g}) | {cell.sum()} | {total:.3f} | {share:.3f} |")


def samples_needed(market, mpe, payoffs, margins, env_steps: float, epsilon: float, episode_length: int):
    """``[S, N]`` targets per cell needed to order each firm's equilibrium investment against its
    runner-up, and ``[S, N]`` the targets a run gets in the runner-up's cell (module docstring).
    ``payoffs``: :func:`~nashrl.theory.capacity.own_action_payoffs` at the MPE; ``margins``: their
    best minus second best."""
    from nashrl.theory.capacity import target_variance, transition_matrix

    n, n_states = market.n_firms, len(market.state_list)
    if any(s.max() < 1.0 - 1e-9 for strategy in mpe.strategies for s in strategy):
        raise SystemExit("samples_needed: the MPE mixes; this count assumes a pure one")
    variance = target_variance(market, mpe.values).reshape(n_states, -1, n)  # [S, joint, N]
    profile = np.stack([s.argmax(1) for s in mpe.strategies], axis=1)
    # training's state visits: episodes from uniform states, each period's distribution averaged
    chain = transition_matrix(market, mpe.joint())
    visits, step = np.zeros(n_states), np.full(n_states, 1.0 / n_states)
    for _ in range(episode_length):
        visits += step / episode_length
        step = step @ chain
    sizes = market.action_sizes
    greedy = [1.0 - epsilon * (1.0 - 1.0 / a) for a in sizes]  # a firm plays its greedy action
    needed, available = np.zeros((n_states, n)), np.zeros((n_states, n))
    for k in range(n_states):
        star = tuple(profile[k])
        for i in range(n):
            runner = int(np.argsort(payoffs[i][k])[-2])
            other = star[:i] + (runner,) + star[i + 1 :]
            cells = [np.ravel_multi_index(x, sizes) for x in (star, other)]
            spread = variance[k, cells[0], i] + variance[k, cells[1], i]
            needed[k, i] = 4.0 * spread / max(margins[k, i], 1e-300) ** 2
            others = np.prod([g for j, g in enumerate(greedy) if j != i])
            available[k, i] = env_steps * visits[k] * epsilon / sizes[i] * others
    return needed, available


if __name__ == "__main__":
    main()
