"""REINFORCE with an autoregressive LSTM controller (Zoph & Le 2017; ENAS's controller).

    for each decision of the space, in declaration order, skipping inactive ones:
        h = LSTM(embedding of the previous choice, h)
        choice ~ softmax(head_of_this_decision(h) / temperature)
    after every `batch_size` finished trials:
        loss = -mean((reward - baseline) / scale * log p(architecture)) - w * entropy
        one Adam step

Every decision has its own embedding table and its own linear head, so the controller
works on any ``DecisionSpace``: conditional decisions are simply skipped when inactive,
and each choice is conditioned on all active choices before it.

Exact resume: the controller is never saved.  It starts from weights fixed by the seed
and is updated only in ``tell``, from the recorded genotypes (log-probabilities are
recomputed, no tensor outlives a call), so replaying ``tell`` rebuilds the same weights.

Rewards: by default the trial's score (``reward="objective"``), optionally less a weighted
cost.  ``reward="mnasnet"`` is MnasNet's (Tan et al., "MnasNet: Platform-Aware Neural
Architecture Search for Mobile", CVPR 2019, eq. 2), read from the trial's metrics::

    reward = ACC * (LAT / T) ** w

with the paper's soft constraint w = alpha = beta = -0.07: a network twice as slow as the
target T must be 5 % more accurate to earn the same reward.  Such a controller optimises
accuracy and latency together whatever the study's objectives, so it counts as
multi-objective: a study with several objectives does not wrap it in ParEGO.

Defaults (lr 0.1, batches of 5) were tuned on NAS-Bench-201 (AnalogNAS-Bench CIFAR-10
table, 100 seeds): mean regret 0.60 / 0.30 / 0.09 at 50 / 100 / 200 queries, against
0.68 / 0.56 / 0.41 for random search; lr 0.01 learns too slowly in 200 queries (0.52 at 100).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from archsearch.errors import ConfigError
from archsearch.space.base import DecisionSpace, InvalidGenotype, SearchSpace
from archsearch.space.decisions import Decision
from archsearch.space.genotype import Genotype, Value
from archsearch.strategy._history import mutant
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial, TrialState

#: What ``Reinforce(reward=...)`` may reward (see the class).
REWARDS = ("objective", "mnasnet")

#: Candidates sampled per ask; the first unseen one is proposed.  If all were seen (a
#: converged controller), the first is mutated until unseen instead of sampling on.
_CANDIDATES = 8


class _Controller(nn.Module):
    """An LSTM cell stepping through the decisions; per decision an embedding and a head.

    Parameters are plain tensors initialised U(-0.1, 0.1) from the strategy's own generator
    (as in ENAS), so building a controller never touches torch's global random state.
    """

    def __init__(
        self, sizes: Sequence[int], hidden: int, generator: torch.Generator,
        temperature: float, tanh_constant: float | None,
    ) -> None:
        super().__init__()

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape).uniform_(-0.1, 0.1, generator=generator))

        self.start = param(1, hidden)  # the first step's input
        self.w_input, self.w_hidden, self.bias = (
            param(4 * hidden, hidden), param(4 * hidden, hidden), param(4 * hidden))
        self.embeddings = nn.ParameterList(param(n, hidden) for n in sizes)
        self.head_weights = nn.ParameterList(param(n, hidden) for n in sizes)
        self.head_biases = nn.ParameterList(param(n) for n in sizes)
        self.temperature = temperature
        self.tanh_constant = tanh_constant

    def _lstm(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gates = F.linear(x, self.w_input, self.bias) + F.linear(h, self.w_hidden)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _logits(self, i: int, h: torch.Tensor) -> torch.Tensor:
        out = F.linear(h, self.head_weights[i], self.head_biases[i]) / self.temperature
        if self.tanh_constant is not None:  # ENAS: bounded logits keep exploring
            out = self.tanh_constant * torch.tanh(out)
        return out

    def forward(
        self, decisions: Sequence[Decision], choices: torch.Tensor | None = None,
        n: int = 1, generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step through ``decisions`` for a batch: sample ``n`` architectures (``choices``
        None) or score the given ones.  ``choices`` holds each decision's choice index, -1
        where the decision is inactive.  Returns (choices, log-probabilities, entropies);
        the last two are zeros when sampling, which needs neither.

        Sampling is batched even when one architecture is wanted: a batch of candidates
        costs about what one does, and the first unseen one is used.
        """
        sampling = choices is None
        if choices is None:
            choices = torch.full((n, len(decisions)), -1, dtype=torch.long)
        batch = choices.shape[0]
        assigned: list[dict[str, Value]] = [{} for _ in range(batch)]
        h = c = torch.zeros(batch, self.start.shape[1])
        x = self.start.expand(batch, -1)
        log_prob = entropy = torch.zeros(batch)
        for i, d in enumerate(decisions):
            # Conditional decisions: when sampling, the earlier choices say which are active.
            mask: torch.Tensor | None
            if not sampling:
                mask = choices[:, i] >= 0
                mask = None if bool(mask.all()) else mask
            elif d.conditions or d.any_of:
                mask = torch.tensor([d.is_active(a) for a in assigned])
            else:
                mask = None  # active everywhere (the common case, kept cheap)
            if mask is not None and not bool(mask.any()):
                continue
            h_new, c_new = self._lstm(x, h, c)
            logits = self._logits(i, h_new)
            # log-softmax, spelled out: torch.log_softmax splits even a tiny batch across
            # threads, which costs milliseconds a call on a busy machine.
            log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
            if sampling:
                drawn = torch.multinomial(log_p.exp(), 1, generator=generator).squeeze(1)
                choices[:, i] = drawn if mask is None else torch.where(mask, drawn, -1)
                for b, j in enumerate(choices[:, i].tolist()):
                    if j >= 0:
                        assigned[b][d.name] = d.choices[j]
            chosen = choices[:, i].clamp(min=0)
            if not sampling:
                step_log_prob = log_p.gather(1, chosen[:, None]).squeeze(1)
                step_entropy = -(log_p.exp() * log_p).sum(dim=1)
                if mask is not None:
                    step_log_prob, step_entropy = step_log_prob * mask, step_entropy * mask
                log_prob, entropy = log_prob + step_log_prob, entropy + step_entropy
            embedded = self.embeddings[i][chosen]
            if mask is None:
                h, c, x = h_new, c_new, embedded
            else:  # an architecture for which this decision is inactive keeps its state
                keep = mask[:, None]
                h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
                x = torch.where(keep, embedded, x)
        return choices, log_prob, entropy


class Reinforce(Strategy):
    """A policy-gradient controller that learns which choices score well.

    The reward is set by ``reward``:

    * ``"objective"`` (default): the trial's score (larger is better), minus
      ``cost_weight`` times the metric ``cost_metric`` when one is named (a trial without
      that metric counts as failed).  On a multi-objective study the study wraps the
      strategy in ParEGO, which gives it a scalarised score.
    * ``"mnasnet"``: MnasNet's ``ACC * (LAT / T) ** w`` from the trial's metrics
      ``accuracy_metric`` (ACC) and ``latency_metric`` (LAT), with ``latency_target`` T
      (required) and ``latency_weight`` w (the paper's soft constraint, -0.07).  The
      study's objectives are not read, so the strategy is ``multi_objective``.  A trial
      without both metrics, with a latency <= 0, or breaking the study's constraints
      counts as failed.

    A failed trial gets the worst reward seen so far.  The advantage is the
    reward minus a bias-corrected moving average (momentum ``baseline_decay``), divided by
    the standard deviation of all rewards so far, which makes ``lr`` independent of the
    objective's units.  Every ``batch_size`` finished trials, in finish order, give one
    Adam step; repeats answered from the record (``cached``) are not rewarded twice.

    Works on any ``DecisionSpace``.  A sample already evaluated or pending is redrawn (8
    candidates), then mutated (at most 100 times), then replaced by a random unseen one.

    >>> from archsearch.space import ChainSpace
    >>> Reinforce(ChainSpace("vector"), seed=0).hidden_size
    64
    """

    name = "reinforce"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        lr: float = 0.1,
        batch_size: int = 5,
        entropy_weight: float = 1e-3,
        baseline_decay: float = 0.9,
        hidden_size: int = 64,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
        cost_metric: str | None = None,
        cost_weight: float = 0.0,
        reward: str = "objective",
        accuracy_metric: str = "val_accuracy",
        latency_metric: str = "latency_seconds",
        latency_target: float | None = None,
        latency_weight: float = -0.07,
    ) -> None:
        super().__init__(space, seed)
        if not isinstance(space, DecisionSpace):
            raise ConfigError("Reinforce needs a DecisionSpace (a list of decisions), got "
                              f"{type(space).__name__}")
        if batch_size < 1 or hidden_size < 1:
            raise ConfigError(f"batch_size and hidden_size must be >= 1, got {batch_size} "
                              f"and {hidden_size}")
        if lr <= 0 or temperature <= 0 or not 0 <= baseline_decay < 1:
            raise ConfigError("need lr > 0, temperature > 0 and 0 <= baseline_decay < 1, got "
                              f"{lr}, {temperature}, {baseline_decay}")
        if reward not in REWARDS:
            raise ConfigError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        if reward == "mnasnet":
            if latency_target is None or not (math.isfinite(latency_target)
                                              and latency_target > 0):
                raise ConfigError("reward='mnasnet' needs latency_target, the target latency "
                                  f"T > 0 (in the units of {latency_metric!r}), got "
                                  f"{latency_target!r}")
            if not math.isfinite(latency_weight):
                raise ConfigError(f"latency_weight must be finite, got {latency_weight}")
            if cost_metric is not None or cost_weight != 0.0:
                raise ConfigError("cost_metric and cost_weight weigh a cost against the "
                                  "objective (reward='objective'); reward='mnasnet' weighs "
                                  "latency_metric with latency_target and latency_weight")
            for label, metric in (("accuracy_metric", accuracy_metric),
                                  ("latency_metric", latency_metric)):
                if not isinstance(metric, str) or not metric:
                    raise ConfigError(f"{label} must name a metric, got {metric!r}")
        self.lr = lr
        self.batch_size = batch_size
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.hidden_size = hidden_size
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.cost_metric = cost_metric
        self.cost_weight = cost_weight
        self.reward = reward
        self.accuracy_metric = accuracy_metric
        self.latency_metric = latency_metric
        self.latency_target = latency_target
        self.latency_weight = latency_weight
        self._controller: _Controller | None = None
        self._optimizer: torch.optim.Adam | None = None
        self._batch: list[tuple[list[int], float]] = []  # (choice indices, advantage)
        self._baseline = 0.0  # the raw EMA; divided by (1 - decay**n) when read
        self._n = 0  # rewards so far, with their running mean, sum of squares, minimum
        self._mean = self._m2 = 0.0
        self._worst = math.inf
        self._updates = 0

    # A property, not an attribute: what the rewards read is a setting of the instance.
    @property
    def multi_objective(self) -> bool:  # type: ignore[override]
        """True with ``reward="mnasnet"``, which reads accuracy and latency itself."""
        return self.reward == "mnasnet"

    @property
    def updates(self) -> int:
        """Adam steps taken so far."""
        return self._updates

    def controller(self) -> _Controller:
        """The controller, built on first use from the seed."""
        if self._controller is None:
            assert isinstance(self.space, DecisionSpace)  # checked in __init__
            generator = torch.Generator().manual_seed(self.seed)
            self._controller = _Controller(
                [d.size for d in self.space.decisions], self.hidden_size, generator,
                self.temperature, self.tanh_constant)
            self._optimizer = torch.optim.Adam(self._controller.parameters(), lr=self.lr)
        return self._controller

    # -- proposals ---------------------------------------------------------------------------
    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        controller = self.controller()
        decisions = self._decisions()
        seen = seen_keys(trials)
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        with torch.no_grad():
            choices, _, _ = controller(decisions, n=_CANDIDATES, generator=generator)
        # Rejection sampling, drawn as one batch.  A space may have rules beyond its
        # decisions (NAS-Bench-Graph has no all-skip cell): such samples are skipped too.
        valid = [g for g in map(self._genotype, choices.tolist()) if self._valid(g)]
        for genotype in valid:
            if self.space.key(genotype) not in seen:
                return genotype
        return mutant(self.space, valid[0] if valid else self.space.sample(rng), seen, rng)

    def _valid(self, genotype: Genotype) -> bool:
        try:
            self.space.validate(genotype)
        except InvalidGenotype:
            return False
        return True

    def _decisions(self) -> tuple[Decision, ...]:
        assert isinstance(self.space, DecisionSpace)
        return self.space.decisions

    def _genotype(self, row: Sequence[int]) -> Genotype:
        return Genotype.of({d.name: d.choices[j] for d, j in zip(self._decisions(), row, strict=True)
                            if j >= 0})

    def _row(self, genotype: Genotype) -> list[int]:
        """Each decision's choice index, -1 where inactive."""
        assert isinstance(self.space, DecisionSpace)
        values = self.space.active_values(genotype)
        return [d.index(values[d.name]) if d.name in values else -1 for d in self._decisions()]

    # -- learning ----------------------------------------------------------------------------
    def _reward(self, trial: FrozenTrial) -> float | None:
        if self.reward == "mnasnet":
            return self._mnasnet_reward(trial)
        if trial.score is None:
            return None
        if self.cost_metric is None:
            return trial.score
        cost = trial.metrics.get(self.cost_metric)
        if cost is None or not math.isfinite(cost):
            return None
        return trial.score - self.cost_weight * cost

    def _mnasnet_reward(self, trial: FrozenTrial) -> float | None:
        """``ACC * (LAT / T) ** w``; None (failed) without both metrics, with a latency
        <= 0, or for a trial that failed or breaks the study's constraints."""
        if trial.state is not TrialState.COMPLETE or not trial.feasible:
            return None
        accuracy = trial.metrics.get(self.accuracy_metric)
        latency = trial.metrics.get(self.latency_metric)
        if accuracy is None or latency is None or not (
                math.isfinite(accuracy) and math.isfinite(latency) and latency > 0):
            return None
        assert self.latency_target is not None  # checked in __init__
        return accuracy * (latency / self.latency_target) ** self.latency_weight

    def tell(self, trial: FrozenTrial) -> None:
        if trial.cached:
            return
        self.controller()
        reward = self._reward(trial)
        if reward is None:  # failed: the worst reward so far (nothing to learn from at first)
            reward = self._worst if self._n else 0.0
        # Advantage against the baseline *before* this reward, in units of the rewards' spread.
        n, advantage = self._n, 0.0
        if n > 1 and self._m2 > 0:
            baseline = self._baseline / (1.0 - self.baseline_decay ** n)
            advantage = (reward - baseline) / math.sqrt(self._m2 / n)
        self._baseline = self.baseline_decay * self._baseline + (1 - self.baseline_decay) * reward
        self._n += 1  # Welford's running mean and variance
        delta = reward - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (reward - self._mean)
        self._worst = min(self._worst, reward)
        self._batch.append((self._row(trial.genotype), advantage))
        if len(self._batch) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        controller = self.controller()
        assert self._optimizer is not None
        choices = torch.tensor([row for row, _ in self._batch], dtype=torch.long)
        advantages = torch.tensor([a for _, a in self._batch], dtype=torch.float32)
        _, log_prob, entropy = controller(self._decisions(), choices)
        loss = -(advantages * log_prob).mean() - self.entropy_weight * entropy.mean()
        self._optimizer.zero_grad()
        loss.backward()
        self._optimizer.step()
        self._batch = []
        self._updates += 1
