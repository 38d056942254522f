"""`FinetunedModel`: a `ConvertedModel` made by `popfit.finetune`, with its report."""

import numpy as np

from ..conversion.model import ConvertedModel
from ..conversion.spec import check_samples
from .curves import layer_constants, x64
from .quantized import model_forward, quant_of
from .weights import initial_params


class FinetunedModel(ConvertedModel):
    """A `ConvertedModel` made by `finetune` (the same, plus ``finetune_report``).

    Attributes
    ----------
    finetune_report : dict
        ``epochs`` run, ``best_epoch`` (whose weights are kept), ``loss``
        (the resolved name), ``schedule`` (Adam's step size), ``train_loss`` and ``heldout_loss`` (the weights kept),
        ``train_accuracy`` /
        ``heldout_accuracy`` (classifiers) or ``train_rmse`` / ``heldout_rmse``
        (regressors) at rate level, ``spikes_per_second_before`` / ``_after``
        (expected spikes per second per sample, all hidden neurons, on the
        training share), ``spike_cost``, ``domain_tolerance`` and ``domains``
        (per hidden layer: ``domain_before``, ``outside_start`` (share of
        pre-activations over ``X`` outside it with the source weights),
        ``outside_before`` (after training), ``refitted``, ``refit_kept``,
        ``heldout_loss_before_refit`` / ``_after_refit`` (present when a
        layer was re-fitted), ``domain_after`` and ``outside_after`` (the
        final weights and fits)), and
        ``max_output_difference`` (max |rate output - source model's output|
        on the held-out share, after the output nonlinearity; None without a
        held-out share), and ``device`` (where jax trained, e.g. ``"cpu:0"``).
    """

    def __init__(self, *args, finetune_report=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.finetune_report = finetune_report

    def summary(self):
        """`ConvertedModel.summary` plus ``"finetune"``: the `finetune_report` (JSON-safe)."""
        return {**super().summary(), "finetune": dict(self.finetune_report)}

    def report(self):
        """`ConvertedModel.report` followed by a ``[[finetune]]`` section."""
        r = self.finetune_report
        lines = [f"[[finetune]] {r['epochs']} epochs (kept epoch {r['best_epoch']}), "
                 f"loss {r['loss']}, {r.get('schedule', 'constant')} step size: "
                 f"train {r['train_loss']:.4g}, held-out {_fmt(r['heldout_loss'])}"]
        for key in ("accuracy", "rmse"):
            if f"train_{key}" in r:
                lines.append(f"    {key}: train {r[f'train_{key}']:.4g}, held-out "
                             f"{_fmt(r[f'heldout_{key}'])}")
        lines.append(f"    device: {r.get('device', 'n/a')}")
        lines.append(f"    expected spikes/s per sample: {r['spikes_per_second_before']:.1f} "
                     f"-> {r['spikes_per_second_after']:.1f}")
        for i, d in enumerate(r.get("domains", ())):
            refit = f", re-fitted to ({d['domain_after'][0]:.3g}, {d['domain_after'][1]:.3g})" \
                if d["refitted"] and d.get("refit_kept", True) else \
                ", re-fit not kept (higher held-out loss)" if d["refitted"] else ""
            lines.append(f"    layer {i} outside domain ({d['domain_before'][0]:.3g}, "
                         f"{d['domain_before'][1]:.3g}): {100 * d['outside_start']:.2f}% "
                         f"before training, {100 * d['outside_before']:.2f}% after{refit}; "
                         f"final {100 * d['outside_after']:.2f}%")
        return super().report() + "\n" + "\n".join(lines)

    def expected_spikes(self, X):
        """Expected spikes per second (Hz) of all hidden neurons, per sample of ``X``.

        From the rate-level forward pass `finetune` trains (what its
        ``spike_cost`` penalizes); shape ``(n_samples,)``.
        """
        X = check_samples(X, self.n_features_in_, "X", self.spec.input_shape).astype(float)
        layers = [layer_constants(fit) for fit in self.fits]
        with x64():
            params = initial_params(self.spec)
            return np.asarray(model_forward(params, layers, X, quant_of(self))[1])


def _fmt(v):
    return "n/a" if v is None else f"{v:.4g}"
