"""popfit.training.choose_spike_cost: the spike-cost weight chosen on a held-out share."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

import popfit
from popfit.exceptions import PopfitValueError

pytest.importorskip("jax")
pytest.importorskip("optax")
from popfit.training import choose_spike_cost  # noqa: E402


@pytest.fixture(scope="module")
def model():
    X, y = load_digits(return_X_y=True)
    X = X[:500] / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        mlp = MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", max_iter=150,
                            random_state=0).fit(X, y[:500])
    return popfit.convert(mlp, n_neurons=1, calibration_data=X, refit=False, seed=0), X, y[:500]


def test_choice_is_the_cheapest_within_the_bound(model):
    m, X, y = model
    chosen = choose_spike_cost(m, X, y, spike_costs=(0.0, 1e-4, 3e-3), epochs=3,
                               max_score_loss=0.05, learning_rate=3e-3)
    sel = chosen.finetune_report["spike_cost_selection"]
    rows = sel["candidates"]
    assert [r["spike_cost"] for r in rows] == [0.0, 1e-4, 3e-3]
    # more spike cost, fewer expected spikes on the selection share
    assert rows[2]["spikes_per_second"] < rows[0]["spikes_per_second"]
    ok = [r for r in rows if r["accuracy"] >= sel["bound"]]
    assert sel["bound"] == pytest.approx(sel["source_score"] - 0.05)
    assert ok and sel["met_bound"]
    best = min(ok, key=lambda r: r["spikes_per_second"])
    assert chosen.finetune_report["spike_cost"] == best["spike_cost"]
    assert sel["n_selection"] == 100


def test_tight_bound_keeps_the_most_accurate(model):
    m, X, y = model
    chosen = choose_spike_cost(m, X, y, spike_costs=(0.0, 3e-2), epochs=2,
                               max_score_loss=0.0, learning_rate=3e-3)
    sel = chosen.finetune_report["spike_cost_selection"]
    accs = [r["accuracy"] for r in sel["candidates"]]
    if not sel["met_bound"]:
        assert chosen.finetune_report["spike_cost"] == sel["candidates"][int(np.argmax(accs))][
            "spike_cost"]


def test_spike_budget_keeps_the_most_accurate_within_it(model):
    m, X, y = model
    kw = dict(spike_costs=(0.0, 3e-3), epochs=2, learning_rate=3e-3, domain_tolerance=None)
    wide = choose_spike_cost(m, X, y, max_spikes=1e9, **kw)
    sel = wide.finetune_report["spike_cost_selection"]
    rows = sel["candidates"]
    assert sel["rule"] == "spike_budget" and sel["bound"] == 1e9 and sel["met_bound"]
    # every candidate within: the best accuracy, ties to the lower selection loss
    best = max(rows, key=lambda r: (r["accuracy"], -r["loss"]))
    assert wide.finetune_report["spike_cost"] == best["spike_cost"]
    # the loss on the selection share, recomputed from the chosen model's outputs
    _, _, X_sel, y_sel = selection_share(m, X, y)
    p = wide.rate_output(X_sel)
    idx = np.searchsorted(m.classes_, y_sel)
    assert best["loss"] == pytest.approx(-np.mean(np.log(p[np.arange(len(idx)), idx])))
    # a budget between the cheapest and the dearest excludes the dearest
    spikes = sorted(r["spikes_per_second"] for r in rows)
    budget = 0.5 * (spikes[0] + spikes[1])
    tight = choose_spike_cost(m, X, y, max_spikes=budget, **kw)
    chosen = tight.finetune_report["spike_cost"]
    within = [r for r in rows if r["spikes_per_second"] <= budget]
    assert len(within) == 1 and chosen == within[0]["spike_cost"]
    assert np.mean(tight.expected_spikes(X_sel)) <= budget
    # no candidate within: the cheapest, reported as not meeting the budget
    none = choose_spike_cost(m, X, y, max_spikes=0.5 * spikes[0], **kw)
    assert not none.finetune_report["spike_cost_selection"]["met_bound"]
    assert none.finetune_report["spike_cost"] == within[0]["spike_cost"]


def selection_share(m, X, y, fraction=0.2, seed=0):
    """The split `choose_spike_cost` documents: a seeded permutation, the first share held."""
    order = np.random.default_rng(seed).permutation(len(X))
    n = int(round(fraction * len(X)))
    return X[order[n:]], y[order[n:]], X[order[:n]], y[order[:n]]


@pytest.mark.parametrize("kwargs, words", [
    (dict(spike_costs=()), "spike_costs"),
    (dict(spike_costs=(-1.0,)), "spike_costs"),
    (dict(selection_fraction=1.0), "selection_fraction"),
    (dict(max_score_loss=-0.1), "max_score_loss"),
    (dict(spike_cost=1e-4), "spike_costs"),
    (dict(max_spikes=0.0), "max_spikes"),
    (dict(max_spikes=float("inf")), "max_spikes"),
    (dict(max_spikes=100.0, max_score_loss=0.01), "either max_score_loss"),
])
def test_bad_arguments(model, kwargs, words):
    m, X, y = model
    with pytest.raises(PopfitValueError, match=words):
        choose_spike_cost(m, X, y, **kwargs)
