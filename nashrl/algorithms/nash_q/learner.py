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
averaged over the batch and the firms; with prioritised replay each row's error is weighted by
its importance-sampling weight (:mod:`nashrl.algorithms.nash_q.priorities`), and the rows' new
priorities are their mean absolute TD error over the firms (:attr:`NashQTorchLearner.td_errors`).

The equilibrium hook (:meth:`NashQTorchLearner.equilibrium_targets`) runs the batched
solver on the learner's device: the driver's GPU with ``num_learners=0`` when there is
one, the CPU otherwise. In sequential-move markets (Stackelberg) the stage game at the
leader's state is the leader's choice against the follower's equilibrium continuation,
so these targets are backward induction and what is learned is subgame perfect.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from ray.rllib.core import ALL_MODULES
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.metrics import (
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
)
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from nashrl.algorithms.nash_q.module import Q_TAKEN
from nashrl.algorithms.nash_q.replay import OWN_SHOCKS, TRAIN_COLUMNS, WEIGHTS
from nashrl.equilibrium.cache import distinct_rows
from nashrl.startup import eager_deterministic_flag

TD_LOSS = "td_loss"
#: Batch column of precomputed equilibrium targets y [B, N] (see NashQTorchLearner.learn).
TARGETS = "nash_q_targets"
#: Rows of the batch on which an update's Q-values are checked to be finite.
PROBE_ROWS = 32


def shock_rent(strategies: list[torch.Tensor]) -> torch.Tensor:
    """``[B, N]`` entropy :math:`H(\\sigma_i) = -\\sum_a \\sigma_i(a) \\ln \\sigma_i(a)` of each
    firm's strategy: times the shock scale, the expected (centred) extreme-value shock of the
    chosen action under logit choice."""
    return torch.stack([-(s * torch.log(s.clamp_min(1e-300))).sum(-1) for s in strategies], 1)


class NashQTorchLearner(TorchLearner):
    def __init__(self, *args, **kwargs) -> None:
        with eager_deterministic_flag():  # RLlib seeds torch here (nashrl.startup)
            super().__init__(*args, **kwargs)

    def configure_optimizers_for_module(self, module_id: str, config=None) -> None:
        """Adam, as RLlib's default, in its fused kernel where the device has one (CPU, CUDA)."""
        module = self._module[module_id]
        params = self.get_parameters(module)
        self.register_optimizer(
            module_id=module_id,
            optimizer=torch.optim.Adam(params, fused=True),
            params=params,
            lr_or_lr_schedule=config.lr,
        )

    def build(self) -> None:
        super().build()
        self._probe: dict[str, torch.Tensor] = {}
        # Per minibatch / per target computation, logged once per update call (_log_stats).
        self._td_stats: dict[str, list[torch.Tensor]] = defaultdict(list)
        # Prioritised replay: each row's mean |TD error| over the firms, per minibatch of the last call.
        self._td_rows: list[torch.Tensor] = []
        self.td_errors: np.ndarray | None = None
        self._solver_stats: dict[str, list[torch.Tensor]] = defaultdict(list)
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

    def learn(self, sample: dict[str, np.ndarray], minibatch_size: int, timesteps: dict[str, Any]) -> dict[str, Any]:
        """Gradient steps on consecutive minibatches of ``minibatch_size`` rows of a joint-replay
        sample (replay field names), then the target-network and learning-rate updates.

        The plain loop of :meth:`ray.rllib.core.learner.Learner.update` -- forward, loss
        (:meth:`compute_loss_for_module`), gradients, RLlib's clipping when configured, the
        optimizer step -- without its per-minibatch batch objects and bookkeeping, which cost more
        than the update itself at the network sizes of market games. RLlib's per-step,
        per-parameter finiteness checks (which turn NaN gradients into zeros, silently) are left
        out too: one :meth:`finite_or_rollback` covers the call, and a non-finite step rolls the
        whole call back and stops the run with a message. Without ``double_q`` the targets of every minibatch come
        from the target network, which does not move during the call: they are computed for the
        whole sample in one pass (one forward, one solve of its distinct next states). Returns the
        reduced metrics, as ``update`` does. With importance-sampling ``weights`` in the sample
        (prioritised replay), :attr:`td_errors` holds each row's mean |TD error| over the firms,
        taken before its minibatch's step, for the replay's new priorities."""
        self.before_gradient_based_update(timesteps=timesteps)
        (module_id,) = self.module.keys()
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id]
        data = {TRAIN_COLUMNS[k]: torch.from_numpy(np.ascontiguousarray(v)).to(self._device) for k, v in sample.items()}
        rows = len(data[Columns.OBS])
        if rows < minibatch_size:
            raise ValueError(f"learn: expected at least minibatch_size={minibatch_size} rows, got {rows}")
        if not config.double_q:  # the target network is fixed during the call: all targets in one pass
            data[TARGETS] = self._targets(module_id, module.unwrapped(), data, config)
        module.train()  # once (RLlib's forward_train sets it again for every minibatch)
        self._td_rows.clear()
        (optimizer,) = self._optimizer_parameters
        postprocess = config.grad_clip is not None or config.log_gradients
        with self.finite_or_rollback():  # one check for the whole call
            for start in range(0, rows - minibatch_size + 1, minibatch_size):
                batch = {k: v[start : start + minibatch_size] for k, v in data.items()}
                loss = self.compute_loss_for_module(
                    module_id=module_id, config=config, batch=batch, fwd_out=module.unwrapped()._forward_train(batch)
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if postprocess:  # RLlib's clipping (and gradient logging), as Learner.update does it
                    grads = self.postprocess_gradients({pid: p.grad for pid, p in self._params.items()})
                    for pid, grad in grads.items():
                        self._params[pid].grad = grad
                optimizer.step()
        self._weights_seq_no += 1
        self.td_errors = torch.cat(self._td_rows).cpu().numpy() if WEIGHTS in data else None
        log = self.metrics.log_value
        log((module_id, self.TOTAL_LOSS_KEY), loss.detach(), window=1)
        log((module_id, NUM_MODULE_STEPS_TRAINED), rows, reduce="sum")
        log((module_id, NUM_MODULE_STEPS_TRAINED_LIFETIME), rows, reduce="lifetime_sum")
        log((ALL_MODULES, NUM_ENV_STEPS_TRAINED), rows, reduce="sum")
        log((ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), rows, reduce="lifetime_sum")
        self.after_gradient_based_update(timesteps=timesteps)
        return self.metrics.reduce()

    def equilibrium_targets(self, module, batch: dict[str, torch.Tensor], config) -> tuple[torch.Tensor, Any]:
        """The centralised equilibrium hook: ``y [B, N]`` and the solver's output (one game per
        distinct next state of the batch)."""
        with torch.no_grad():
            # Stage games are functions of the public next state: each distinct one is built and solved once.
            states, inverse = distinct_rows(batch[Columns.NEXT_OBS][:, : module.public_size])
            q_target = module.target_q_values(states)
            game = module.q_values(states) if config.double_q else q_target
            solution = module.solve_stage_games(game)
            values = module.head.values(q_target, solution)  # the selected solution, valued by the target net
            if module.logit_temperature is not None:
                values = values + module.logit_temperature * shock_rent(solution.strategies).to(values.device)
            values = values[inverse]
            alive = 1.0 - batch[Columns.TERMINATEDS].double()
            flow = batch[Columns.REWARDS].double()
            if OWN_SHOCKS in batch:
                flow = flow - batch[OWN_SHOCKS].double()
            y = flow + config.gamma * alive.unsqueeze(1) * values
        return y.float(), solution

    def _targets(self, module_id: str, module, batch: dict[str, Any], config) -> torch.Tensor:
        """:meth:`equilibrium_targets`, timed, its solver statistics kept for :meth:`_log_stats`."""
        start = time.perf_counter()
        y, solution = self.equilibrium_targets(module, batch, config)
        self._solver_stats[module_id].append(
            torch.stack(
                [
                    torch.as_tensor(float(solution.n_unsolved), dtype=torch.float64),
                    solution.n_equilibria.double().mean().cpu(),
                    solution.nash_gap.max().double().cpu(),
                    torch.as_tensor(time.perf_counter() - start, dtype=torch.float64),
                ]
            )
        )
        return y

    def compute_loss_for_module(self, *, module_id: str, config, batch: dict[str, Any], fwd_out: dict[str, Any]):
        module = self.module[module_id].unwrapped()
        self._probe[module_id] = batch[Columns.OBS].detach()  # checked after the update (finite_or_rollback)
        q_taken = fwd_out[Q_TAKEN]
        y = batch[TARGETS] if TARGETS in batch else self._targets(module_id, module, batch, config)
        error = q_taken - y
        if WEIGHTS in batch:  # prioritised replay: each row's loss times its importance-sampling weight
            if config.td_error_loss_fn == "huber":
                per_row = torch.nn.functional.huber_loss(q_taken, y, reduction="none", delta=1.0)
            else:
                per_row = error**2
            loss = (per_row * batch[WEIGHTS].unsqueeze(1)).mean()
            self._td_rows.append(error.detach().abs().mean(1))
        elif config.td_error_loss_fn == "huber":
            loss = torch.nn.functional.huber_loss(q_taken, y, reduction="mean", delta=1.0)
        else:
            loss = (error**2).mean()
        self._td_stats[module_id].append(
            torch.stack([loss.detach(), q_taken.detach().mean(), error.detach().abs().mean()]).double()
        )
        return loss

    def _log_stats(self) -> None:
        """This update call's statistics, once per call: the last minibatch's TD loss, the means over
        its minibatches of Q(s, a) and |TD error|, and of the target computations' solver statistics
        (unsolved games: their sum; largest Nash gap: its max; seconds: mean per target computation)."""
        log = self.metrics.log_value
        for module_id, rows in self._td_stats.items():
            if rows:
                stats = torch.stack(rows)
                log((module_id, TD_LOSS), float(stats[-1, 0]), window=1)
                log((module_id, "q_taken_mean"), float(stats[:, 1].mean()), window=1)
                log((module_id, "td_error_abs_mean"), float(stats[:, 2].mean()), window=1)
                rows.clear()
        for module_id, rows in self._solver_stats.items():
            if rows:
                stats = torch.stack(rows)
                log((module_id, "solver_unsolved"), float(stats[:, 0].sum()), reduce="sum")
                log((module_id, "solver_mean_equilibria"), float(stats[:, 1].mean()), window=1)
                log((module_id, "solver_max_gap"), float(stats[:, 2].max()), window=1)
                log((module_id, "solver_seconds"), float(stats[:, 3].mean()), window=1)
                rows.clear()

    def apply_gradients(self, gradients_dict) -> None:
        """RLlib's per-minibatch path (remote learners): each step under :meth:`finite_or_rollback`."""
        with self.finite_or_rollback():
            super().apply_gradients(gradients_dict)

    @contextlib.contextmanager
    def finite_or_rollback(self):
        """Keep the optimizer steps taken inside only if the weights stay finite *and* give finite
        Q-values on the last batch; otherwise restore the weights and the optimizer's state from
        before and count it (``non_finite_updates``): the training loop then stops the run with a
        clear message and a checkpoint of these last finite weights, instead of env runners
        failing on NaN stage games. (Non-finite gradients give non-finite weights: caught here.)"""
        params = list(self._params.values())
        saved = parameters_to_vector(params).detach().clone()
        optimizers = [(opt, copy.deepcopy(opt.state_dict())) for opt in self._optimizer_parameters]
        yield
        with torch.no_grad():
            ok = bool(torch.isfinite(parameters_to_vector(params)).all()) and all(
                bool(torch.isfinite(self.module[mid].unwrapped().raw_q(obs[:PROBE_ROWS])).all())
                for mid, obs in self._probe.items()
            )
        if not ok:
            vector_to_parameters(saved, params)
            for opt, state in optimizers:
                opt.load_state_dict(state)
            for module_id in self.module.keys():
                self.metrics.log_value((module_id, "non_finite_updates"), 1, reduce="sum")

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Move the target network towards the online one every ``target_network_update_freq`` env
        steps; from ``average_weights_from`` on, add the online weights to their running mean once
        per update call."""
        super().after_gradient_based_update(timesteps=timesteps)
        self._log_stats()
        now = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) or 0
        for module_id, module in self.module._rl_modules.items():
            config = self.config.get_config_for_module(module_id)
            plain = module.unwrapped()
            if getattr(plain, "average_from", None) is not None and now >= plain.average_from:
                plain.update_average()
            if now - self._last_target_update[module_id] >= config.target_network_update_freq:
                for main, target in plain.get_target_network_pairs():
                    update_target_network(main_net=main, target_net=target, tau=config.tau)
                self._last_target_update[module_id] = now
                self.metrics.log_value((module_id, "num_target_updates"), 1, reduce="lifetime_sum")
