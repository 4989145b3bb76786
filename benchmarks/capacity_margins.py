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
    _samples_needed(market, mpe, margins, weights, args)


def _samples_needed(market, mpe, margins, weights, args) -> None:
    """Targets per cell needed to order each firm's equilibrium investment against its runner-up,
    against the targets a run gets there (see the module docstring)."""
    from nashrl.theory.capacity import stage_games, target_variance, transition_tensor

    n, n_states = market.n_firms, len(weights)
    trans = transition_tensor(market).reshape(n_states, -1, n_states)  # [S, joint, S']
    variance = target_variance(market, mpe.values).reshape(n_states, -1, n)  # [S, joint, N]
    profile = np.stack([s.argmax(1) for s in mpe.strategies], axis=1)  # pure MPE
    games = stage_games(market, mpe.values)
    # training's state visits: episodes from uniform states, each period's distribution averaged
    chain = np.einsum("sj,sjt->st", _one_hot_joint(market, profile), trans)
    visits, step = np.zeros(n_states), np.full(n_states, 1.0 / n_states)
    for _ in range(args.episode_length):
        visits += step / args.episode_length
        step = step @ chain
    sizes = market.action_sizes
    others_greedy = (1.0 - args.epsilon * (1.0 - 1.0 / sizes[0])) ** (n - 1)
    needed, available = np.zeros((n_states, n)), np.zeros((n_states, n))
    for k in range(n_states):
        star = tuple(profile[k])
        for i in range(n):
            own = games[(k, i) + star[:i] + (slice(None),) + star[i + 1 :]]
            runner = int(np.argsort(own)[-2])
            other = star[:i] + (runner,) + star[i + 1 :]
            cells = [np.ravel_multi_index(x, sizes) for x in (star, other)]
            spread = variance[k, cells[0], i] + variance[k, cells[1], i]
            needed[k, i] = 4.0 * spread / max(margins[k, i], 1e-300) ** 2
            available[k, i] = args.env_steps * visits[k] * args.epsilon / sizes[i] * others_greedy
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


def _one_hot_joint(market, profile: np.ndarray) -> np.ndarray:
    """``[S, joint]`` one-hot rows of a pure profile ``[S, N]``."""
    out = np.zeros((len(profile), int(np.prod(market.action_sizes))))
    out[np.arange(len(profile)), np.ravel_multi_index(profile.T, market.action_sizes)] = 1.0
    return out


if __name__ == "__main__":
    main()
