"""Training a converted model's weights through its populations' rate curves (jax).

Needs ``pip install 'popfit[train]'`` (jax, optax). `finetune` is also
reachable as ``popfit.finetune``; `choose_spike_cost` picks its spike-cost
weight on a held-out share.
"""

from .finetune import FinetunedModel, finetune
from .select import DEFAULT_SPIKE_COSTS, choose_spike_cost

__all__ = ["DEFAULT_SPIKE_COSTS", "FinetunedModel", "choose_spike_cost", "finetune"]
