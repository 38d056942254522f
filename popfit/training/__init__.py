"""Training a converted model's weights through its populations' rate curves (jax).

Needs ``pip install 'popfit[train]'`` (jax, optax). `finetune` is also
reachable as ``popfit.finetune``.
"""

from .finetune import FinetunedModel, finetune

__all__ = ["FinetunedModel", "finetune"]
