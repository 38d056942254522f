"""Plots of fits, spiking runs and accuracy against Nengo's default tuning.

matplotlib is imported inside each function, so ``import popfit`` never loads
it. Each function takes ``ax=None``: given an Axes it draws the main panel
there and returns that Axes; otherwise it makes its own figure (see each
function for what it returns).
"""

import numbers

import numpy as np

from ._optional import import_optional
from ._validation import check_int, public
from .baseline import compute_accuracy  # re-exported: popfit.plotting.compute_accuracy
from .exceptions import PopfitTypeError, PopfitValueError
from .result import check_fit
from .targets import evaluate_target

__all__ = ["plot_fit", "plot_spiking", "plot_accuracy", "compute_accuracy"]

_TARGET_STYLE = {"color": "k", "lw": 2.0, "alpha": 0.35}
_FIT_STYLE = {"color": "C0", "lw": 1.5}
_POSITIVE = "C0"  # spikes (always positive for a popfit population)
_NEGATIVE = "C3"  # negative spikes of the signed baseline


def _pyplot():
    return import_optional("matplotlib.pyplot", "popfit's plotting")


def _check_ax(ax):
    """``ax`` if it is None or a matplotlib Axes, else a popfit error naming it."""
    axes = import_optional("matplotlib.axes", "popfit's plotting")
    if ax is not None and not isinstance(ax, axes.Axes):
        raise PopfitTypeError(
            f"ax must be None (a new figure) or a matplotlib Axes (got {ax!r:.60} of type "
            f"{type(ax).__name__}); pass e.g. ax=plt.gca()")
    return ax


def _check_margin(margin):
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) \
            or not np.isfinite(margin) or margin < 0:
        raise PopfitValueError(
            f"margin must be a finite number >= 0, a fraction of the domain "
            f"width (got {margin!r})"
        )
    return float(margin)


def _target_curve(fit, x):
    """Target values on ``x``: NaN beyond the domain where the target is undefined."""
    lo, hi = fit.domain
    inside = (x >= lo) & (x <= hi)
    y = np.full_like(x, np.nan)
    y[inside] = evaluate_target(fit.target, x[inside])
    if not inside.all():
        try:
            with np.errstate(all="ignore"):
                beyond = np.asarray(fit.target(x[~inside]), dtype=float)
        except Exception:  # a user callable defined on the domain only
            beyond = None
        if beyond is not None and beyond.shape == (np.count_nonzero(~inside),):
            y[~inside] = np.where(np.isfinite(beyond), beyond, np.nan)
    return y


def _literal(text):
    """``text`` shown as written: every ``$`` escaped, so matplotlib never parses mathtext.

    A target name comes from the user or a fit file; ``"$\\frac"`` would make
    drawing fail. With every dollar escaped matplotlib sees no math and drops
    exactly the escapes it added, so the name is drawn unchanged.
    """
    return str(text).replace("$", r"\$")


def _fit_title(fit, escape=True):
    """The title `plot_fit` gives a fit: its target and errors.

    The rate NRMSE, and for a fit made for a synapse also, on a second line,
    the expected spiking NRMSE (what the fit was optimized for) with that
    synapse. With ``escape`` the target's name is escaped so that matplotlib
    draws it as written (without: plain text, e.g. for a file's metadata).
    """
    name = _literal(fit.target.name) if escape else fit.target.name
    title = f"{name}: rate NRMSE {fit.nrmse:.3g}"
    if fit.spiking_nrmse is not None:
        title += (f"\nexpected spiking NRMSE {fit.spiking_nrmse:.3g} "
                  f"(synapse {fit.synapse:g} s)")
    return title


def _mark_domain(ax, domain):
    for edge in domain:
        ax.axvline(edge, color="0.6", lw=0.8, ls=":", zorder=0)


@public
def plot_fit(fit, ax=None, *, n_points=1001, margin=0.1, target_kws=None, fit_kws=None):
    """Plot a fit: target vs. approximation, tuning curves and error.

    Curves are drawn over the domain and ``margin`` times its width beyond
    each end (dotted vertical lines mark the domain).

    Parameters
    ----------
    fit : PopulationFit
        The fit to show.
    ax : matplotlib.axes.Axes, optional
        If given, the target and approximation are drawn on it (titled with
        the rate NRMSE and, for a fit made for a synapse, the expected spiking
        NRMSE at that synapse; the target's name is drawn as written, never
        parsed as mathtext), the tuning
        curves (Hz) on a twin y-axis (``ax.twinx()``), and the error is not
        drawn; that Axes is returned. If None, a new Figure with three stacked
        panels (target and approximation; tuning curves in Hz; error
        approximation - target) is created and returned.
    n_points : int
        Number of evenly spaced input points per curve (>= 2).
    margin : float
        Extra input range drawn beyond each domain end, as a fraction of the
        domain width (>= 0).
    target_kws, fit_kws : dict, optional
        Keyword arguments for ``Axes.plot`` of the target and the
        approximation lines (override the defaults).

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
        The new Figure (``ax=None``; its axes are ``fig.axes[:3]``) or ``ax``.
    """
    fit = check_fit(fit)
    n_points = check_int(n_points, "n_points", low=2)
    margin = _check_margin(margin)
    plt = _pyplot()

    lo, hi = fit.domain
    width = hi - lo
    x = np.linspace(lo - margin * width, hi + margin * width, n_points)
    y_target = _target_curve(fit, x)
    y_fit = fit.predict(x)
    rates = fit.rates(x)
    label_fit = f"popfit ({fit.n_neurons} {type(fit.neuron_type).__name__})"
    t_kws = {**_TARGET_STYLE, "label": f"target ({_literal(fit.target.name)})",
             **(target_kws or {})}
    f_kws = {**_FIT_STYLE, "label": label_fit, **(fit_kws or {})}

    if _check_ax(ax) is None:
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=(6.4, 7.2),
                                 gridspec_kw={"height_ratios": [2, 1.5, 1]})
        main, tuning, error = axes
    else:
        fig, main, tuning, error = None, ax, ax.twinx(), None

    main.plot(x, y_target, **t_kws)
    main.plot(x, y_fit, **f_kws)
    main.set_ylabel("output")
    main.set_title(_fit_title(fit), fontsize="medium")
    _mark_domain(main, fit.domain)

    for i in range(fit.n_neurons):
        sign = "+" if fit.encoders[i] > 0 else "-"
        tuning.plot(x, rates[:, i], lw=0.8, alpha=0.6 if fig is None else 1.0,
                    color=f"C{(i % 9) + 1}", label=f"neuron {i} (encoder {sign})")
    tuning.axhline(fit.max_rate, color="0.5", lw=0.8, ls="--", label="max_rate")
    tuning.set_ylabel("rate (Hz)")

    if fig is None:
        main.legend(loc="upper left", fontsize="small")
        return ax

    main.legend(loc="best", fontsize="small")
    tuning.legend(loc="best", fontsize="x-small", ncol=2)
    _mark_domain(tuning, fit.domain)
    error.plot(x, y_fit - y_target, color="C3", lw=1.0, label="approximation - target")
    error.axhline(0.0, color="0.5", lw=0.8)
    error.set_ylabel("error")
    error.set_xlabel("input x")
    _mark_domain(error, fit.domain)
    fig.align_ylabels(axes)
    fig.tight_layout()
    return fig


def _raster(ax, t, spikes, color_pos, color_neg=None):
    """Spike raster of ``spikes`` (n_steps, n) on ``ax``: one row per neuron."""
    n = spikes.shape[1]
    pos = [t[spikes[:, i] > 0] for i in range(n)]
    ax.eventplot(pos, lineoffsets=np.arange(n), linelengths=0.8, colors=color_pos,
                 linewidths=0.6)
    if color_neg is not None:
        neg = [t[spikes[:, i] < 0] for i in range(n)]
        ax.eventplot(neg, lineoffsets=np.arange(n), linelengths=0.8, colors=color_neg,
                     linewidths=0.6)
    ax.set_yticks(np.arange(n))
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_ylabel("neuron")


@public
def plot_spiking(report, ax=None):
    """Plot a spiking run: raster, filtered output vs. ideal, and the signed baseline.

    Parameters
    ----------
    report : SpikingReport
        From `popfit.evaluate_spiking`.
    ax : matplotlib.axes.Axes, optional
        If given, only the filtered outputs are drawn on it (ideal, popfit
        population and, if there is one, the signed baseline) against time
        (s), and that Axes is returned. If None, a new Figure is returned with
        the population on the left (filtered output vs. ideal above, spike
        raster below) and the signed baseline on the right in the same layout;
        its raster shows positive spikes in blue and negative spikes in red.

    Returns
    -------
    matplotlib.figure.Figure or matplotlib.axes.Axes
    """
    needed = ("fit", "t", "ideal", "output", "spikes", "nrmse", "synapse")
    missing = [name for name in needed if not hasattr(report, name)]
    if missing:
        raise PopfitTypeError(
            f"report must be a popfit.SpikingReport (got {type(report).__name__}, "
            f"missing {', '.join(missing)}); make one with popfit.evaluate_spiking"
        )
    plt = _pyplot()
    t = np.asarray(report.t, dtype=float)
    fit = report.fit
    has_base = getattr(report, "baseline_output", None) is not None
    base_name = getattr(report, "baseline_name", None) or "signed baseline"
    label_pop = (f"popfit, {fit.n_neurons} {type(fit.neuron_type).__name__} "
                 f"(NRMSE {report.nrmse:.3g})")
    label_base = (f"{base_name} (NRMSE {report.baseline_nrmse:.3g})" if has_base else None)

    if _check_ax(ax) is not None:
        ax.plot(t, report.ideal, **{**_TARGET_STYLE, "label": "ideal"})
        ax.plot(t, report.output, color="C0", lw=1.0, label=label_pop)
        if has_base:
            ax.plot(t, report.baseline_output, color="C1", lw=1.0, label=label_base)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"output, filtered ({report.synapse:g} s)")
        ax.legend(loc="best", fontsize="small")
        return ax

    n_cols = 2 if has_base else 1
    fig, axes = plt.subplots(2, n_cols, sharex=True, squeeze=False,
                             figsize=(5.2 * n_cols, 5.6),
                             gridspec_kw={"height_ratios": [2, 1]})
    out, raster = axes[0, 0], axes[1, 0]
    out.plot(t, report.ideal, **{**_TARGET_STYLE, "label": "ideal"})
    out.plot(t, report.output, color="C0", lw=1.0, label="popfit output")
    out.set_title(label_pop, fontsize="medium")
    out.set_ylabel(f"output, filtered ({report.synapse:g} s)")
    out.legend(loc="best", fontsize="small")
    _raster(raster, t, np.asarray(report.spikes), _POSITIVE)
    raster.set_xlabel("time (s)")
    if has_base:
        bout, braster = axes[0, 1], axes[1, 1]
        bout.sharey(out)
        bout.plot(t, report.ideal, **{**_TARGET_STYLE, "label": "ideal"})
        bout.plot(t, report.baseline_output, color="C1", lw=1.0, label="baseline output")
        bout.set_title(label_base, fontsize="medium")
        bout.legend(loc="best", fontsize="small")
        spikes = report.baseline_spikes
        if spikes is not None:
            _raster(braster, t, np.asarray(spikes).reshape(len(t), -1), _POSITIVE, _NEGATIVE)
            from matplotlib.lines import Line2D

            braster.legend([Line2D([], [], color=_POSITIVE), Line2D([], [], color=_NEGATIVE)],
                           ["positive spikes", "negative spikes"], loc="upper right",
                           fontsize="x-small")
        braster.set_xlabel("time (s)")
    fig.tight_layout()
    return fig


@public
def plot_accuracy(targets=("tanh", "sigmoid", "linear"), n_neurons=(1, 2, 3, 4, 6, 8), *,
                  neuron_type="LIF", max_rate=400.0, synapse=None, seeds=range(10), ax=None,
                  results=None):
    """NRMSE against number of neurons: popfit vs. Nengo's default random tuning.

    For each target: popfit's rate NRMSE (solid, circles; dotted, the expected
    spiking NRMSE when ``synapse`` is given) and the median over ``seeds`` of
    Nengo's default tuning (dashed) with its interquartile range shaded. Log
    y-axis.

    Parameters
    ----------
    targets, n_neurons, neuron_type, max_rate, synapse, seeds
        As in `popfit.baseline.compute_accuracy` (ignored when ``results`` is given).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure's Axes if None.
    results : dict, optional
        Precomputed output of `popfit.baseline.compute_accuracy`, to plot
        without refitting.

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = _pyplot()
    if results is None:
        results = compute_accuracy(targets, n_neurons, neuron_type=neuron_type,
                                   max_rate=max_rate, synapse=synapse, seeds=seeds)
    elif not isinstance(results, dict) or not results:
        raise PopfitTypeError(
            f"results must be a non-empty dict from popfit.baseline.compute_accuracy "
            f"(got {type(results).__name__})"
        )
    if _check_ax(ax) is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    for k, (target, r) in enumerate(results.items()):
        color = f"C{k}"
        sizes = np.asarray(r["n_neurons"])
        nengo = np.asarray(r["nengo"], dtype=float)
        q25, q50, q75 = np.percentile(nengo, [25, 50, 75], axis=1)
        ax.plot(sizes, r["popfit"], "o-", color=color, label=f"{_literal(target)}: popfit")
        if r.get("popfit_spiking") is not None:
            ax.plot(sizes, r["popfit_spiking"], "o:", color=color, mfc="none",
                    label=f"{_literal(target)}: popfit, expected spiking")
        ax.plot(sizes, q50, "s--", color=color, alpha=0.7, mfc="none",
                label=f"{_literal(target)}: Nengo default (median)")
        ax.fill_between(sizes, q25, q75, color=color, alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xticks(sorted({int(n) for r in results.values() for n in r["n_neurons"]}))
    ax.set_xlabel("number of neurons")
    ax.set_ylabel("NRMSE (RMSE / range of target)")
    ax.set_title("popfit vs. Nengo default tuning (shaded: interquartile range)",
                 fontsize="medium")
    ax.legend(loc="best", fontsize="x-small", ncol=1)
    return ax
