"""`choose_spike_cost`: pick `finetune`'s spike-cost weight on a held-out share.

Each candidate weight is trained on the same training part of ``X``; the
weights are compared on a selection share of ``X`` that no candidate trains
on (nor uses for early stopping), by rate-level accuracy (classifiers) or
RMSE (regressors), the loss there and expected spikes. Two rules:

* a score bound (the default): the candidate with the fewest expected spikes
  whose score on the selection share is within ``max_score_loss`` of the
  source model's there;
* a spike budget (``max_spikes``): the most accurate candidate (best score,
  ties broken by the lower loss on the selection share) whose expected
  spikes there are at most ``max_spikes``.

The test set is never involved. ``benchmarks/bench_finetune.py`` uses the
spike budget.
"""

import numbers

import numpy as np

from .._validation import check_seed, public
from ..exceptions import PopfitTypeError, PopfitValueError
from ..conversion.model import ConvertedModel
from ..conversion.spec import check_samples
from .finetune import finetune, targets, scores

#: Spike-cost weights tried by default (per Hz of expected spikes per sample).
DEFAULT_SPIKE_COSTS = (0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
#: ``max_score_loss`` without a spike budget.
DEFAULT_MAX_SCORE_LOSS = 0.005


def _check_costs(spike_costs):
    costs = list(spike_costs) if isinstance(spike_costs, (list, tuple, np.ndarray)) else None
    if not costs or any(isinstance(c, bool) or not isinstance(c, numbers.Real)
                        or not np.isfinite(c) or c < 0 for c in costs):
        raise PopfitValueError(f"spike_costs must be a non-empty list of finite numbers >= 0 "
                               f"(got {spike_costs!r}); e.g. (0, 1e-4, 3e-4)")
    return sorted(float(c) for c in costs)


def _selection_loss(model, loss, out, t):
    """The loss on the selection share without spike cost (from outputs ``out``)."""
    out = np.asarray(out, dtype=float)
    if not model.is_classifier:
        return float(np.mean((out - t) ** 2))
    p = np.clip(out, 1e-12, 1.0)
    if t.ndim == 1:  # class indices, softmax outputs
        return float(-np.mean(np.log(p[np.arange(len(t)), t])))
    if out.shape[1] == 1 or model.spec.multilabel:  # logistic outputs
        q = np.clip(1.0 - out, 1e-12, 1.0)
        return float(-np.mean(t * np.log(p) + (1 - t) * np.log(q)))
    return float(-np.mean(np.sum(t * np.log(p), axis=1)))  # probabilities (distill)


def _check_rule(max_score_loss, max_spikes):
    if max_spikes is not None:
        if max_score_loss is not None:
            raise PopfitValueError("pass either max_score_loss (the cheapest candidate within "
                                   "a score bound) or max_spikes (the most accurate within a "
                                   "spike budget), not both")
        if isinstance(max_spikes, bool) or not isinstance(max_spikes, numbers.Real) \
                or not 0 < max_spikes < np.inf:
            raise PopfitValueError(f"max_spikes must be a finite number > 0 (expected spikes "
                                   f"per second per sample, Hz) (got {max_spikes!r}); e.g. "
                                   "half the signed network's expected spikes")
        return None, float(max_spikes)
    if max_score_loss is None:
        max_score_loss = DEFAULT_MAX_SCORE_LOSS
    if isinstance(max_score_loss, bool) or not isinstance(max_score_loss, numbers.Real) \
            or not 0 <= max_score_loss < np.inf:
        raise PopfitValueError(f"max_score_loss must be a finite number >= 0 (got "
                               f"{max_score_loss!r}); e.g. 0.005")
    return float(max_score_loss), None


@public
def choose_spike_cost(model, X, y=None, *, spike_costs=DEFAULT_SPIKE_COSTS,
                      selection_fraction=0.2, max_score_loss=None, max_spikes=None, seed=0,
                      **options):
    """Fine-tune with each spike-cost weight; keep the cheapest within a score bound,
    or the most accurate within a spike budget.

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
    max_score_loss : float, optional
        The score bound (default `DEFAULT_MAX_SCORE_LOSS` when ``max_spikes``
        is not given): classifiers, the largest drop of rate-level accuracy
        on the selection share below the source model's accuracy there
        (0.005: half a percentage point; with ``loss="distill"`` accuracy is
        agreement with the source model); regressors, the largest relative
        increase of the rate-level RMSE over the source model's. The
        candidate with the fewest expected spikes within it is kept; if none
        meets it, the one with the best score.
    max_spikes : float, optional
        A spike budget instead (Hz): the largest expected spikes per second
        per sample (all hidden neurons, rate model, as
        `FinetunedModel.expected_spikes`) on the selection share. The
        candidate with the best score within it is kept (ties: the lower loss
        on the selection share, without spike cost); if none is within it,
        the one with the fewest expected spikes.
    seed : int
        The selection split and every candidate's `finetune` seed.
    **options
        Passed to `finetune` (``loss``, ``epochs``, ``learning_rate``, ...).

    Returns
    -------
    FinetunedModel
        The chosen candidate; its ``finetune_report`` gains ``"spike_cost"``
        (the weight chosen) and ``"spike_cost_selection"``: per candidate its
        weight, score and loss on the selection share and expected spikes per
        second per sample there, the source model's score, the rule and its
        bound, and whether a candidate met it.
    """
    if not isinstance(model, ConvertedModel):
        raise PopfitTypeError(f"model must be a popfit.ConvertedModel (made by popfit.convert) "
                              f"(got {type(model).__name__})")
    costs = _check_costs(spike_costs)
    if isinstance(selection_fraction, bool) or not isinstance(selection_fraction, numbers.Real) \
            or not 0 < selection_fraction < 1:
        raise PopfitValueError(f"selection_fraction must be a number in (0, 1) (got "
                               f"{selection_fraction!r}); e.g. 0.2")
    max_score_loss, max_spikes = _check_rule(max_score_loss, max_spikes)
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
    sign = 1.0 if kind == "accuracy" else -1.0  # larger sign * score is better
    rows, models = [], []
    for cost in costs:
        m = finetune(model, X[train], None if y_arr is None else y_arr[train],
                     spike_cost=cost, seed=seed, **options)
        out = m.rate_output(X[sel])
        spikes = float(np.mean(m.expected_spikes(X[sel])))
        rows.append({"spike_cost": cost, kind: scores(model, loss, out, t_sel)[1],
                     "loss": _selection_loss(model, loss, out, t_sel),
                     "spikes_per_second": spikes})
        models.append(m)
    if max_spikes is None:
        rule, bound = "score_bound", source - sign * max_score_loss * (
            1.0 if kind == "accuracy" else source)
        good = [i for i, r in enumerate(rows) if sign * r[kind] >= sign * bound]
        best = min(good, key=lambda i: (rows[i]["spikes_per_second"], -rows[i]["spike_cost"])) \
            if good else max(range(len(rows)), key=lambda i: sign * rows[i][kind])
    else:
        rule, bound = "spike_budget", max_spikes
        good = [i for i, r in enumerate(rows) if r["spikes_per_second"] <= max_spikes]
        best = min(good, key=lambda i: (-sign * rows[i][kind], rows[i]["loss"],
                                        rows[i]["spikes_per_second"])) if good else \
            min(range(len(rows)), key=lambda i: rows[i]["spikes_per_second"])
    chosen = models[best]
    chosen.finetune_report = {
        **chosen.finetune_report, "spike_cost": costs[best],
        "spike_cost_selection": {"rule": rule, "score": kind, "source_score": source,
                                 "bound": bound, "n_selection": int(n_sel),
                                 "candidates": rows, "met_bound": bool(good)}}
    return chosen
