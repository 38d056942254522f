"""`choose_spike_cost`: pick `finetune`'s spike-cost weight on a held-out share.

Each candidate weight is trained on the same training part of ``X``; the
weights are compared on a selection share of ``X`` that no candidate trains
on (nor uses for early stopping), by rate-level accuracy (classifiers) or
RMSE (regressors) and expected spikes. The chosen one is the candidate
with the fewest expected spikes whose score on the selection share is
within ``max_score_loss`` of the source model's there. The test set is
never involved. ``benchmarks/bench_finetune.py`` uses it.
"""

import numbers

import numpy as np

from .._validation import check_seed, public
from ..exceptions import PopfitTypeError, PopfitValueError
from ..conversion.model import ConvertedModel
from ..conversion.spec import check_samples
from .finetune import finetune, targets, scores

#: Spike-cost weights tried by default (per Hz of expected spikes per sample).
DEFAULT_SPIKE_COSTS = (0.0, 3e-5, 1e-4, 3e-4, 1e-3)


def _check_costs(spike_costs):
    costs = list(spike_costs) if isinstance(spike_costs, (list, tuple, np.ndarray)) else None
    if not costs or any(isinstance(c, bool) or not isinstance(c, numbers.Real)
                        or not np.isfinite(c) or c < 0 for c in costs):
        raise PopfitValueError(f"spike_costs must be a non-empty list of finite numbers >= 0 "
                               f"(got {spike_costs!r}); e.g. (0, 1e-4, 3e-4)")
    return sorted(float(c) for c in costs)


@public
def choose_spike_cost(model, X, y=None, *, spike_costs=DEFAULT_SPIKE_COSTS,
                      selection_fraction=0.2, max_score_loss=0.005, seed=0, **options):
    """Fine-tune with each spike-cost weight; keep the cheapest within a score bound.

    Parameters
    ----------
    model : popfit.ConvertedModel
    X, y : array_like
        As for `finetune` (``y`` optional with ``loss="distill"``).
    spike_costs : sequence of float
        The candidate ``spike_cost`` weights (>= 0).
    selection_fraction : float
        Share of ``X`` in (0, 1) held out to compare the candidates (split by
        ``seed``); the candidates train on the rest.
    max_score_loss : float
        Classifiers: the largest drop of rate-level accuracy on the selection
        share below the source model's accuracy there (0.005: half a
        percentage point; with ``loss="distill"`` accuracy is agreement with
        the source model). Regressors: the largest relative increase of the
        rate-level RMSE over the source model's. If no candidate meets it,
        the one with the best score is kept.
    seed : int
        The selection split and every candidate's `finetune` seed.
    **options
        Passed to `finetune` (``loss``, ``epochs``, ``learning_rate``, ...).

    Returns
    -------
    FinetunedModel
        The chosen candidate; its ``finetune_report`` gains ``"spike_cost"``
        (the weight chosen) and ``"spike_cost_selection"``: per candidate its
        weight, score on the selection share and expected spikes per second
        per sample there, and the source model's score and the bound.
    """
    if not isinstance(model, ConvertedModel):
        raise PopfitTypeError(f"model must be a popfit.ConvertedModel (made by popfit.convert) "
                              f"(got {type(model).__name__})")
    costs = _check_costs(spike_costs)
    if isinstance(selection_fraction, bool) or not isinstance(selection_fraction, numbers.Real) \
            or not 0 < selection_fraction < 1:
        raise PopfitValueError(f"selection_fraction must be a number in (0, 1) (got "
                               f"{selection_fraction!r}); e.g. 0.2")
    if isinstance(max_score_loss, bool) or not isinstance(max_score_loss, numbers.Real) \
            or not 0 <= max_score_loss < np.inf:
        raise PopfitValueError(f"max_score_loss must be a finite number >= 0 (got "
                               f"{max_score_loss!r}); e.g. 0.005")
    if "spike_cost" in options:
        raise PopfitValueError("pass the candidates as spike_costs, not spike_cost")
    seed = check_seed(seed)
    X = check_samples(X, model.n_features_in_, "X", model.spec.input_shape).astype(float)
    n_sel = int(round(selection_fraction * len(X)))
    if n_sel < 1 or n_sel >= len(X):
        raise PopfitValueError(f"selection_fraction={selection_fraction:g} of {len(X)} samples "
                               "leaves no selection or no training sample; pass more samples")
    order = np.random.default_rng(seed).permutation(len(X))
    sel, train = order[:n_sel], order[n_sel:]
    y_arr = None if y is None else np.asarray(y)
    loss = options.get("loss", "auto")
    if loss == "auto":
        loss = "distill" if y is None else "cross_entropy" if model.is_classifier else "mse"
    t_sel = targets(model, loss, X[sel], None if y_arr is None else y_arr[sel])
    kind, source = scores(model, loss, model.spec.forward(X[sel])[1], t_sel)
    if kind == "accuracy":
        bound = source - max_score_loss
        ok = lambda s: s >= bound  # noqa: E731
    else:
        bound = source * (1 + max_score_loss)
        ok = lambda s: s <= bound  # noqa: E731
    rows, models = [], []
    for cost in costs:
        m = finetune(model, X[train], None if y_arr is None else y_arr[train],
                     spike_cost=cost, seed=seed, **options)
        out = m.rate_output(X[sel])
        spikes = float(np.mean(m.expected_spikes(X[sel])))
        rows.append({"spike_cost": cost, kind: scores(model, loss, out, t_sel)[1],
                     "spikes_per_second": spikes})
        models.append(m)
    good = [i for i, r in enumerate(rows) if ok(r[kind])]
    if good:
        best = min(good, key=lambda i: (rows[i]["spikes_per_second"], -rows[i]["spike_cost"]))
    else:
        best = (max if kind == "accuracy" else min)(range(len(rows)), key=lambda i: rows[i][kind])
    chosen = models[best]
    chosen.finetune_report = {
        **chosen.finetune_report, "spike_cost": costs[best],
        "spike_cost_selection": {"score": kind, "source_score": source, "bound": bound,
                                 "n_selection": int(n_sel), "candidates": rows,
                                 "met_bound": bool(good)}}
    return chosen
