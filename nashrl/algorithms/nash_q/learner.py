r"""The Nash-Q learner: TD targets from the equilibria of next-state stage games.

For a joint transition :math:`(s, a, r, s')` firm :math:`i`'s target is

.. math::

    y_i = r_i + \gamma\, (1 - \text{terminated})\, \mathrm{Nash}_i\big(\bar Q(s', \cdot)\big),

the value to firm :math:`i` of the selected equilibrium (or correlated equilibrium, or
maximin value) of the stage game :math:`[\bar Q_1(s', \cdot), \dots, \bar Q_N(s', \cdot)]` of the
target network :math:`\bar Q` (Hu and Wellman 2003, with deep function approximation).
With ``double_q`` the equilibrium is *selected* on the online network's stage game and
*valued* with the target network's, which damps the max-bias of Q-learning.

Soft Nash-Q (``solution_concept: "logit"``, games with private type-1 extreme-value shocks of
scale :math:`\tau`, centred): the solution is the stage game's logit equilibrium
:math:`\sigma`, and a firm's value adds the expected shock of its chosen action,

.. math::

    V_i(s') = \sum_a \sigma(a)\, \bar Q_i(s', a) + \tau H(\sigma_i)
            = \tau \log \sum_{a_i} \exp\big(\bar Q_i(s', a_i, \sigma_{-i}) / \tau\big)

(the second form, log-sum-exp, holds at the logit equilibrium of the same game; the first is
used, so that ``double_q``'s selection on the online network is valued correctly). With private
shocks a firm's reward holds the realised shock of its chosen action, whose mean given the
choice is the selection rent :math:`-\tau \ln \sigma_i(a_i)`, not zero; regressing on it would
count the rent twice (in :math:`Q` and in :math:`\tau H`). The firm saw that shock, so its target
uses the shock-free profit :math:`r_i - \varepsilon_i(a_i)` (the replay's ``own_shocks``), and
:math:`Q_i(s, a)` learns the choice-specific value
:math:`\pi_i(s, a) + \gamma E[V_i(s') \mid s, a]` of Aguirregabiria and Mira (2007).
The loss is the Huber (or squared) error of :math:`Q_i(s, a)` against :math:`y_i`,
averaged over the batch and the firms.

The equilibrium hook (:meth:`NashQTorchLearner.equilibrium_targets`) runs the batched
solver on the learner's device: the driver's GPU with ``num_learners=0`` when there is
one, the CPU otherwise. In sequential-move markets (Stackelberg) the stage game at the
leader's state is the leader's choice against the follower's equilibrium continuation,
so these targets are backward induction and what is learned is subgame perfect.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from nashrl.algorithms.nash_q.module import Q_JOINT
from nashrl.algorithms.nash_q.replay import OWN_SHOCKS

TD_LOSS = "td_loss"
#: Rows of the batch on which an update's Q-values are checked to be finite.
PROBE_ROWS = 32


def joint_index(actions: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Row-major flat index of joint actions ``[B, N]``."""
    flat = torch.zeros(actions.shape[0], dtype=torch.long, device=actions.device)
    for i, size in enumerate(sizes):
        flat = flat * size + actions[:, i].long()
    return flat


def shock_rent(strategies: list[torch.Tensor]) -> torch.Tensor:
    """``[B, N]`` entropy :math:`H(\\sigma_i) = -\\sum_a \\sigma_i(a) \\ln \\sigma_i(a)` of each
    firm's strategy: times the shock scale, the expected (centred) extreme-value shock of the
    chosen action under logit choice."""
    return torch.stack([-(s * torch.log(s.clamp_min(1e-300))).sum(-1) for s in strategies], 1)


class NashQTorchLearner(TorchLearner):
    def build(self) -> None:
        super().build()
        self._probe: dict[str, torch.Tensor] = {}
        self._last_target_update = defaultdict(int)
        self.module.foreach_module(
            lambda mid, mod: mod.make_target_networks() if isinstance(mod, TargetNetworkAPI) else None
        )

    def get_state(self, *args, **kwargs):
        state = super().get_state(*args, **kwargs)
        state["last_target_update"] = dict(self._last_target_update)  # when the target net was last synced
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        if "last_target_update" in state:
            self._last_target_update = defaultdict(int, state["last_target_update"])

    def equilibrium_targets(self, module, batch: dict[str, torch.Tensor], config) -> tuple[torch.Tensor, Any]:
        """The centralised equilibrium hook: ``y [B, N]`` and the solver's output."""
        next_obs = batch[Columns.NEXT_OBS]
        with torch.no_grad():
            q_target = module.target_q_values(next_obs).double()
            game = module.q_values(next_obs).double() if config.double_q else q_target
            solution = module.solve_stage_games(game)
            joint = solution.joint.to(q_target.device)
            values = (q_target * joint.unsqueeze(1)).flatten(2).sum(-1)
            if module.logit_temperature is not None:
                values = values + module.logit_temperature * shock_rent(solution.strategies).to(values.device)
            alive = 1.0 - batch[Columns.TERMINATEDS].double()
            flow = batch[Columns.REWARDS].double()
            if OWN_SHOCKS in batch:
                flow = flow - batch[OWN_SHOCKS].double()
            y = flow + config.gamma * alive.unsqueeze(1) * values
        return y.float(), solution

    def compute_loss_for_module(self, *, module_id: str, config, batch: dict[str, Any], fwd_out: dict[str, Any]):
        module = self.module[module_id].unwrapped()
        self._probe[module_id] = batch[Columns.OBS].detach()  # checked after the update (apply_gradients)
        q = fwd_out[Q_JOINT]
        n_firms = q.shape[1]
        flat = q.flatten(2)
        taken = joint_index(batch[Columns.ACTIONS], module.action_sizes)
        q_taken = flat.gather(2, taken.view(-1, 1, 1).expand(-1, n_firms, 1)).squeeze(2)
        start = time.perf_counter()
        y, solution = self.equilibrium_targets(module, batch, config)
        solve_seconds = time.perf_counter() - start
        error = q_taken - y
        if config.td_error_loss_fn == "huber":
            loss = torch.nn.functional.huber_loss(q_taken, y, reduction="mean", delta=1.0)
        else:
            loss = (error**2).mean()
        log = self.metrics.log_value
        log((module_id, TD_LOSS), loss.detach(), window=1)
        log((module_id, "q_taken_mean"), q_taken.detach().mean(), window=1)
        log((module_id, "td_error_abs_mean"), error.detach().abs().mean(), window=1)
        log((module_id, "solver_unsolved"), float(solution.n_unsolved), reduce="sum")
        log((module_id, "solver_mean_equilibria"), float(solution.n_equilibria.float().mean()), window=1)
        log((module_id, "solver_max_gap"), float(solution.nash_gap.max()), window=1)
        log((module_id, "solver_seconds"), solve_seconds, window=1)
        return loss

    def apply_gradients(self, gradients_dict) -> None:
        """Apply an update only if its gradients are finite *and* the updated network still gives
        finite Q-values on the batch; otherwise keep the previous weights and count it
        (``non_finite_updates``): the training loop then stops the run with a clear message and a
        checkpoint of these last finite weights, instead of env runners failing on NaN stage games."""
        ok = bool(torch.isfinite(torch.cat([g.reshape(-1) for g in gradients_dict.values()])).all())
        if ok:
            params = list(self._params.values())
            saved = parameters_to_vector(params).detach().clone()  # one copy of the weights
            super().apply_gradients(gradients_dict)
            with torch.no_grad():
                ok = bool(torch.isfinite(parameters_to_vector(params)).all()) and all(
                    bool(torch.isfinite(self.module[mid].unwrapped().q_values(obs[:PROBE_ROWS])).all())
                    for mid, obs in self._probe.items()
                )
                if not ok:
                    vector_to_parameters(saved, params)
        if not ok:
            for module_id in self.module.keys():
                self.metrics.log_value((module_id, "non_finite_updates"), 1, reduce="sum")

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Move the target network towards the online one every ``target_network_update_freq`` env steps."""
        super().after_gradient_based_update(timesteps=timesteps)
        now = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) or 0
        for module_id, module in self.module._rl_modules.items():
            config = self.config.get_config_for_module(module_id)
            if now - self._last_target_update[module_id] >= config.target_network_update_freq:
                for main, target in module.unwrapped().get_target_network_pairs():
                    update_target_network(main_net=main, target_net=target, tau=config.tau)
                self._last_target_update[module_id] = now
                self.metrics.log_value((module_id, "num_target_updates"), 1, reduce="lifetime_sum")
