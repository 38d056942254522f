"""`present`: run a network on samples and read out its decoded output, and its checks.

`present` is the one present-and-read-out loop of popfit: each sample is
held on the network's input for a fixed time, one after another, and the
decoded output is averaged over the last half of each presentation. It runs
any network with ``input`` and ``output`` Nodes (a converted model, a
baseline built directly with nengo); `ConvertedModel` uses it for its
sequential predictions and ``benchmarks/bench_convert.py`` for every network
it compares. The checks of the prediction options (``presentation_time``,
``simulator``, ``batch_size``, ``n_jobs``, ``progress_bar``) live here too.
"""

import numbers

import numpy as np

from .._validation import check_bool, check_int, check_positive, check_seed, public
from ..exceptions import PopfitTypeError, PopfitValueError
from ..wholestep import DT
from .batch import make_simulator
from .spec import check_samples

#: ``presentation_time`` below this many synapse time constants per filtered
#: stage (one per hidden layer) gives a warning: the output may not settle.
MIN_SYNAPSES_PER_PRESENTATION = 5
#: ... and below this many time steps.
SETTLE_STEPS = 10
#: Fewest time steps per presentation (the read-out averages the last half).
MIN_STEPS = 2
#: Most time steps per presentation (per sample): 100 s at ``dt`` = 1 ms.
MAX_PRESENTATION_STEPS = 100_000
#: Most time steps simulated in one call, samples x steps per presentation.
#: The sequential path (`present`) probes the output at every step (8 bytes x
#: outputs x steps: 800 MB for 10 outputs at the bound), and nengo's reference
#: simulator takes about 0.1 ms per step or more, so the bound is tens of
#: minutes of simulation; split larger sets over several calls.
MAX_TOTAL_STEPS = 10_000_000
#: Simulated seconds from which nengo's progress bar is shown by default.
LONG_BATCH_SECONDS = 20.0
#: Batched predictions show nengo's progress bar by default from this many
#: neuron updates (samples x neurons x steps; about 20 s here). A batch simulates
#: few steps of many neurons, and closing the bar costs about 0.2 s of wall
#: time, as much as a whole 450-digit batch (measured).
LONG_BATCH_NEURON_STEPS = 1e9


def check_progress_bar(progress_bar):
    import nengo.utils.progress

    if progress_bar is None or isinstance(progress_bar, (bool, np.bool_)) \
            or isinstance(progress_bar, nengo.utils.progress.ProgressBar):
        return progress_bar
    raise PopfitTypeError(
        f"progress_bar must be True, False, None (shown for long batches) or a "
        f"nengo.utils.progress.ProgressBar (got {progress_bar!r} of type "
        f"{type(progress_bar).__name__})")


def check_presentation_time(presentation_time, dt, n_samples):
    """Return the whole number of ``dt`` steps per presentation.

    At least `MIN_STEPS`, at most `MAX_PRESENTATION_STEPS`, and ``n_samples``
    presentations of at most `MAX_TOTAL_STEPS` steps in all.
    """
    if isinstance(presentation_time, bool) or not isinstance(presentation_time,
                                                             numbers.Real):
        raise PopfitTypeError(
            f"presentation_time must be a number of seconds (got "
            f"{presentation_time!r} of type {type(presentation_time).__name__})")
    t = check_positive(presentation_time, "presentation_time")
    steps = round(t / dt)
    if steps < MIN_STEPS:
        raise PopfitValueError(
            f"presentation_time must be at least {MIN_STEPS} time steps "
            f"({MIN_STEPS * dt:g} s at dt={dt:g} s) (got {t:g} s); the output is read "
            "over the last half of each presentation")
    if steps > MAX_PRESENTATION_STEPS:
        raise PopfitValueError(
            f"presentation_time must be at most {MAX_PRESENTATION_STEPS:,} time steps "
            f"per sample ({MAX_PRESENTATION_STEPS * dt:g} s at dt={dt:g} s) (got {t:g} s, "
            f"{steps:,} steps); every step is simulated: shorten presentation_time")
    if n_samples * steps > MAX_TOTAL_STEPS:
        raise PopfitValueError(
            f"n_samples x presentation_time must be at most {MAX_TOTAL_STEPS:,} time "
            f"steps in one call (got {n_samples:,} samples x {steps:,} steps = "
            f"{n_samples * steps:,}, presentation_time {t:g} s at dt={dt:g} s); every "
            "step is simulated: pass fewer samples per call, or shorten presentation_time")
    return steps


@public
def present(network, X, presentation_time=0.1, *, dt=DT, seed=None, progress_bar=None,
            simulator=None):
    """Simulate ``network`` on each sample; the decoded output averaged over each presentation.

    Each sample is held on ``network.input`` for ``presentation_time``
    seconds, one after another, by a `nengo.processes.PresentInput` Node (the
    network state is not reset between samples); ``network.output`` is probed
    unfiltered and averaged over the last half of each presentation. The
    network is not modified: a small wrapper network around it is built and
    simulated.

    Parameters
    ----------
    network : nengo.Network
        With attributes ``input`` (a Node of size ``n_features``) and
        ``output`` (a Node or other probeable object), as
        `ConvertedModel.network`.
    X : array_like, shape (n_samples, n_features)
        Real, finite samples.
    presentation_time : float
        Seconds per sample, rounded to whole time steps (at least 2 steps, at
        most `MAX_PRESENTATION_STEPS`, and `MAX_TOTAL_STEPS` over all samples).
        The output must settle within the first half of each presentation.
    dt : float
        Simulator time step (s).
    seed : int, optional
        Seed in [0, 2**32 - 1] of the wrapper network and the simulator.
    progress_bar : bool or nengo.utils.progress.ProgressBar, optional
        Nengo's progress bar; default: shown when the batch lasts 20 s of
        simulated time or more.
    simulator : callable, optional
        A nengo backend's ``Simulator`` class (or a `functools.partial` of one
        with extra arguments), called as ``simulator(network, dt=dt,
        seed=seed, progress_bar=progress_bar)``; default `nengo.Simulator`.

    Returns
    -------
    ndarray, shape (n_samples, output size)
    """
    import nengo

    size_in = getattr(getattr(network, "input", None), "size_in", None)
    if not isinstance(network, nengo.Network) or not isinstance(size_in, int) \
            or getattr(network, "output", None) is None:
        raise PopfitTypeError(
            "network must be a nengo.Network with an `input` Node (size_in = "
            f"n_features) and an `output` to probe (got {type(network).__name__})")
    X = check_samples(X, size_in, "X")
    dt = check_positive(dt, "dt")
    steps = check_presentation_time(presentation_time, dt, len(X))
    seed = check_seed(seed, allow_none=True)
    progress_bar = check_progress_bar(progress_bar)
    simulator = check_simulator(simulator)
    n = len(X)
    if progress_bar is None:
        progress_bar = n * steps * dt >= LONG_BATCH_SECONDS
    # The PresentInput inputs are fixed at build time, so each call builds a
    # small wrapper around the (unchanged) network.
    with nengo.Network(label="popfit present", seed=seed) as wrapper:
        wrapper.networks.append(network)
        stim = nengo.Node(nengo.processes.PresentInput(X, presentation_time=steps * dt),
                          label="samples")
        nengo.Connection(stim, network.input, synapse=None)
        probe = nengo.Probe(network.output, synapse=None)
    # The build can raise nengo's spurious `max_rates` warnings for neurons
    # whose threshold (with the folded-in layer bias) lies beyond x = 1; only
    # the build is wrapped, with a filter for exactly those messages.

    sim = make_simulator(simulator, wrapper, dt=dt, progress_bar=progress_bar, seed=seed)
    with sim:
        sim.run_steps(n * steps)
    y = sim.data[probe].reshape(n, steps, -1)
    return y[:, steps // 2:, :].mean(axis=1)


def check_simulator(simulator):
    """``simulator`` (a callable, e.g. a nengo backend's Simulator class) or `nengo.Simulator`.

    A class (or a `functools.partial` of one) must have ``run_steps``; what a
    call returns is checked by `make_simulator`.
    """
    import functools

    import nengo

    if simulator is None:
        return nengo.Simulator
    cls = simulator.func if isinstance(simulator, functools.partial) else simulator
    if not callable(simulator) or (isinstance(cls, type) and not hasattr(cls, "run_steps")):
        raise PopfitTypeError(
            f"simulator must be a nengo backend's Simulator class, with run_steps (e.g. "
            f"nengo.Simulator, nengo_loihi.Simulator, or functools.partial("
            f"nengo_loihi.Simulator, target='sim')) (got {simulator!r} of type "
            f"{type(simulator).__name__})")
    return simulator


def check_batching(batch_size, n_jobs, sequential):
    sequential = check_bool(sequential, "sequential")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", low=1)
    if n_jobs is None:
        n_jobs = 1
    elif isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise PopfitTypeError(
            f"n_jobs must be None, a positive int or a negative int (joblib: -1 uses all "
            f"CPUs) (got {n_jobs!r} of type {type(n_jobs).__name__})")
    elif n_jobs == 0:
        raise PopfitValueError(
            "n_jobs must be None, a positive int or a negative int (joblib: -1 uses all "
            "CPUs) (got 0)")
    elif n_jobs < 0:
        import joblib

        n_jobs = max(1, joblib.cpu_count() + 1 + int(n_jobs))
    if sequential and (batch_size is not None or n_jobs != 1):
        raise PopfitValueError(
            "sequential=True presents the samples one after another in one simulator; "
            f"batch_size and n_jobs apply only to batched prediction (got batch_size="
            f"{batch_size!r}, n_jobs={n_jobs!r})")
    return batch_size, int(n_jobs)
