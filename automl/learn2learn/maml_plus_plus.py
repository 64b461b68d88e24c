"""MAML++ (Antoniou, Edwards and Storkey, "How to train your MAML", 2019): MAML made stable and better.

MAML's outer loop differentiates through the inner steps, and small changes
in the initialization can make that gradient explode or vanish. MAML++ keeps
MAML's idea and changes how it is trained:

- **Multi-step loss**: the query loss after *every* inner step counts, each
  weighted; the earlier steps' weights decay over the first
  ``MSL_SHARE`` of training until the last step's loss is nearly all.
- **Per-step batch normalisation**: each inner step (and the prediction after
  the last) has its own learned scale and shift for every batch-norm layer;
  the statistics are each step's own batch's, as in MAML's transductive setting.
- **Learned inner learning rates per layer and per step** (LSLR): one rate for
  each parameter tensor at each step, learned with the initialization.
- **Cosine annealing** of the outer learning rate over the planned run.
- **First order first**: the inner gradients are constants for the first
  ``FIRST_ORDER_SHARE`` of training, then second order (derivative-order annealing).

The schedule is driven by the share of the planned meta-training time spent
(:meth:`MAMLPlusPlus.schedule`), so that a resumed run continues it.

>>> import numpy as np, torch
>>> from automl.learn2learn.series import sinusoid
>>> net = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 1))
>>> learner = MAMLPlusPlus(net, "regression", inner_lr=0.01, inner_steps=2)
>>> loss = learner.meta_step([sinusoid().episode(np.random.default_rng(0), 5, 10) for _ in range(4)])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from automl.learn2learn.algorithms import MetaLearner, Params, anneal, task_loss
from automl.learn2learn.series import REGRESSION, Episode

MSL_SHARE = 0.3  # the multi-step loss anneals to the last step's loss over this share of training
MSL_FLOOR = 0.03  # ... where each earlier step keeps this share of its first weight
FIRST_ORDER_SHARE = 0.25  # inner gradients are constants for this share of training, then second order
MIN_OUTER_LR_SHARE = 0.01  # cosine annealing ends at this share of the outer learning rate


def _norm_parameters(model: nn.Module) -> list[str]:
    """The names of the batch-norm layers' scale and shift parameters of ``model``."""
    return [f"{module_name}.{name}" for module_name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) for name, _ in module.named_parameters()]


class MAMLPlusPlus(MetaLearner):
    """MAML trained the MAML++ way (see the module docstring); the same interface as :class:`MetaLearner`."""

    def __init__(self, model: nn.Module, task: str, inner_lr: float = 0.1, outer_lr: float = 0.001,
                 inner_steps: int = 3, device: str | torch.device = "cpu"):
        super().__init__(model, "maml", task, inner_lr, outer_lr, inner_steps, device)
        self.algorithm = "maml++"
        norms = set(_norm_parameters(self.model))
        self.adapted = [name for name in self.params if name not in norms]
        # one scale and shift per step and one for the prediction after the last step
        self.step_norms: Params = {name: self.params[name].detach().repeat(inner_steps + 1, 1).requires_grad_(True)
                                   for name in self.params if name in norms}
        self.step_rates: Params = {name: torch.full((inner_steps,), inner_lr, device=self.device, requires_grad=True)
                                   for name in self.adapted}
        self.rates = {}
        learned = ([self.params[name] for name in self.adapted] + list(self.step_norms.values())
                   + list(self.step_rates.values()))
        self.optimizer = torch.optim.Adam(learned, lr=outer_lr)
        self.second_order = False
        self.step_weights = [1.0 / inner_steps] * inner_steps

    def schedule(self, fraction: float) -> None:
        """Set the outer learning rate, the loss weights of the steps and the derivative order for ``fraction`` of
        the planned meta-training spent."""
        anneal(self.optimizer, self.outer_lr, fraction, MIN_OUTER_LR_SHARE)
        self.second_order = fraction >= FIRST_ORDER_SHARE
        steps = self.inner_steps
        decay = max(MSL_FLOOR, 1.0 - fraction / MSL_SHARE)
        earlier = [decay / steps] * (steps - 1)
        self.step_weights = [*earlier, 1.0 - sum(earlier)]

    def _norms(self, step: int) -> Params:
        """The batch-norm scales and shifts of inner step ``step`` (``inner_steps``: the prediction after the last)."""
        index = min(step, self.inner_steps)
        return {name: values[index] for name, values in self.step_norms.items()}

    def _steps(self, Xs: torch.Tensor, ys: torch.Tensor, steps: int, second_order: bool):
        """The adapted parameters after each of ``steps`` inner steps (with the norms to predict with after it)."""
        params = {name: self.params[name] for name in self.adapted}

        def support_loss(moving: Params, step: int) -> torch.Tensor:
            return task_loss(self.model, {**moving, **self._norms(step)}, Xs, ys, self.task)

        for step in range(steps):
            grads = torch.func.grad(support_loss)(params, step)
            rate = min(step, self.inner_steps - 1)
            params = {name: value - self.step_rates[name][rate] * (grads[name] if second_order
                                                                  else grads[name].detach())
                      for name, value in params.items()}
            yield step, {**params, **self._norms(step + 1)}

    def meta_loss(self, episodes: Sequence[Episode]) -> torch.Tensor:
        """The batch's multi-step query loss (each step's query loss, weighted by the schedule)."""
        def episode_loss(Xs: torch.Tensor, ys: torch.Tensor, Xq: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
            total = torch.zeros((), device=self.device)
            for step, params in self._steps(Xs, ys, self.inner_steps, self.second_order):
                if self.step_weights[step] > 0:
                    total = total + self.step_weights[step] * task_loss(self.model, params, Xq, yq, self.task)
            return total

        batches = [self.tensors(episode) for episode in episodes]
        if len({tuple(tuple(t.shape) for t in batch) for batch in batches}) == 1:
            return torch.func.vmap(episode_loss)(*(torch.stack(parts) for parts in zip(*batches))).mean()
        return torch.stack([episode_loss(*batch) for batch in batches]).mean()

    def _adapted(self, Xs: torch.Tensor, ys: torch.Tensor, steps: int | None) -> Params:
        return list(self._steps(Xs, ys, steps or self.inner_steps, False))[-1][1]

    def adapted_params(self, X, y, steps: int | None = None) -> Params:
        Xs, ys = self._example_tensors(X, y)
        return {name: value.detach() for name, value in self._adapted(Xs, ys, steps).items()}

    def _episode_metric(self, Xs, ys, Xq, yq, steps: int | None) -> torch.Tensor:
        output = functional_call(self.model, self._adapted(Xs, ys, steps), (Xq,))
        if self.task == REGRESSION:
            return torch.mean((output.reshape(yq.shape) - yq) ** 2)
        return (output.argmax(dim=1) == yq).float().mean()

    def learned(self) -> dict[str, Params]:
        return {**super().learned(), "step_norms": self.step_norms, "step_rates": self.step_rates}
