"""`ConvertedModel`, and `present`: run a network on samples and read out its decoded output.

`present` is the one present-and-read-out loop of popfit: each sample is
held on the network's input for a fixed time, one after another, and the
decoded output is averaged over the last half of each presentation. It runs
any network with ``input`` and ``output`` Nodes (a converted model, a
baseline built directly with nengo); `ConvertedModel` uses it for its
predictions and ``benchmarks/bench_convert.py`` for every network it compares.
"""

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import scipy.sparse
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.metaestimators import available_if

from .._validation import (check_bool, check_int, check_positive, check_seed, public,
                           user_stacklevel)
from ..exceptions import PopfitTypeError, PopfitValueError
from .refit import folded_weights, forward
from ..targets import apply_activation
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
DT = 0.001


def _check_progress_bar(progress_bar):
    import nengo.utils.progress

    if progress_bar is None or isinstance(progress_bar, (bool, np.bool_)) \
            or isinstance(progress_bar, nengo.utils.progress.ProgressBar):
        return progress_bar
    raise PopfitTypeError(
        f"progress_bar must be True, False, None (shown for long batches) or a "
        f"nengo.utils.progress.ProgressBar (got {progress_bar!r} of type "
        f"{type(progress_bar).__name__})")


def _check_presentation_time(presentation_time, dt, n_samples):
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


@public("present")
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
    steps = _check_presentation_time(presentation_time, dt, len(X))
    seed = check_seed(seed, allow_none=True)
    progress_bar = _check_progress_bar(progress_bar)
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
    from .batch import make_simulator

    sim = make_simulator(simulator, wrapper, dt=dt, progress_bar=progress_bar, seed=seed)
    with sim:
        sim.run_steps(n * steps)
    y = sim.data[probe].reshape(n, steps, -1)
    return y[:, steps // 2:, :].mean(axis=1)


def _connection_matrix(conn):
    """A connection's transform as a scipy csr matrix (Sparse) or an ndarray (Dense)."""
    import nengo

    t = conn.transform
    if isinstance(t, nengo.transforms.Sparse):
        init = t.init
        if not scipy.sparse.issparse(init):  # nengo's SparseMatrix
            init = scipy.sparse.csr_matrix((init.data, init.indices.T), shape=t.shape)
        return scipy.sparse.csr_matrix(init)
    init = np.asarray(t.init, dtype=float)
    if init.ndim < 2:  # nengo's meaning: a scalar or 1-D init is a diagonal
        return np.diag(init * np.ones(t.shape[0]))
    return init


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


def _check_batching(batch_size, n_jobs, sequential):
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


@dataclass(frozen=True)
class LayerInfo:
    """What `convert` decided for one hidden layer (JSON-safe via `summary`)."""

    label: str
    activation: str
    n_units: int
    domain: Tuple[float, float]
    fraction_outside: Optional[float]
    mean_rate: float
    rate_basis: str = field(default="domain")


class ConvertedModel:
    """A trained model converted to a spiking Nengo network (made by `popfit.convert`).

    Attributes
    ----------
    network : nengo.Network
        The converted network. ``network.input`` (Node, size ``n_features``)
        takes the model input; ``network.output`` (Node, size ``n_outputs``)
        carries the decoded output *before* the output nonlinearity, filtered
        by ``synapse``; ``network.layers`` lists the `popfit.PopulationLayer`
        of each hidden layer. Use it inside a larger model, or call `predict`.
    spec : ModelSpec
        The source model's weights as read.
    fits : tuple of PopulationFit
        The population fit used by each hidden layer (shared fits are the
        same object).
    layers : tuple of LayerInfo
        Each hidden layer's activation, units, domain, the fraction of
        calibration pre-activations outside the domain, and mean firing rate.
    is_classifier : bool
    classes_ : ndarray or None
    n_features_in_ : int
    neuron_type, n_neurons, max_rate, synapse, seed, hardware, weight_bits
        The conversion settings (``n_neurons`` per hidden unit: an int, or a
        tuple with one count per hidden layer).
    weights, biases : tuple of ndarray or None
        With ``refit``: ``weights[l]``, shape ``(n_next, n_neurons_l)``, the
        re-solved weights from hidden layer ``l``'s neurons to the next
        layer's units (the outputs, for the last), and ``biases[l]`` the next
        layer's input bias. None without refit (the source model's weights
        with the decoders folded in).
    refit_report : popfit.conversion.refit.RefitReport or None
        Held-out rate-level errors before and after the re-solve.
    quantization : dict or None
        With ``weight_bits``: each quantized connection (``"connections"``)
        and the rate-level cost on up to 500 calibration samples (``"cost"``,
        None without calibration data; `popfit.loihi.quantization_cost`).
    """

    def __init__(self, spec, fits, layers, network, *, neuron_type, n_neurons, max_rate,
                 synapse, seed=None, convert_time=0.0, weights=None, biases=None,
                 refit_report=None, hardware=None, weight_bits=None,
                 quantization_data=None):
        self.spec = spec
        self.fits = tuple(fits)
        self.layers = tuple(layers)
        self.network = network
        self.neuron_type = neuron_type
        self.n_neurons = n_neurons
        self.max_rate = max_rate
        self.synapse = synapse
        self.seed = seed
        self.convert_time = convert_time
        self.weights = None if weights is None else tuple(weights)
        self.biases = None if biases is None else tuple(biases)
        self.refit_report = refit_report
        self.is_classifier = spec.is_classifier
        self.classes_ = spec.classes
        self.n_features_in_ = spec.n_features
        self.hardware = hardware
        self.weight_bits = weight_bits
        self.quantization = None
        if weight_bits is not None:  # round the on-chip weights (popfit.loihi)
            from ..loihi import quantization_cost, quantize_network

            originals = {}
            self.quantization = {
                "connections": quantize_network(self.network, weight_bits, originals),
                "float_transforms": originals}
            self.quantization["cost"] = (None if quantization_data is None else
                                         quantization_cost(self, quantization_data))

    # ----------------------------------------------------------------- running
    @property
    def min_presentation_time(self):
        """Recommended shortest ``presentation_time`` (s): 5 synapses per hidden layer.

        Shorter presentations are allowed (down to 2 time steps) with a warning.
        """
        return MIN_SYNAPSES_PER_PRESENTATION * self.synapse * len(self.spec.hidden)

    def _warn_short(self, presentation_time):
        """Warn when ``presentation_time`` (checked) is below the recommended minimum."""
        low = max(self.min_presentation_time, SETTLE_STEPS * DT)
        if presentation_time < low - 1e-12:
            warnings.warn(
                f"presentation_time {presentation_time:g} s is below {low:g} s "
                f"({MIN_SYNAPSES_PER_PRESENTATION} x synapse ({self.synapse:g} s) per "
                f"hidden layer ({len(self.spec.hidden)}), and {SETTLE_STEPS} time "
                "steps): the output may not settle before it is read over the last "
                "half of each presentation; check the accuracy against a longer "
                "presentation", UserWarning, stacklevel=user_stacklevel())

    @public("ConvertedModel.decoded_output")
    def decoded_output(self, X, presentation_time=0.1, progress_bar=None, *, batch_size=None,
                       n_jobs=None, simulator=None, sequential=False):
        """Simulate the network on each sample; the decoded output before the nonlinearity.

        Each sample is presented for ``presentation_time`` seconds and the
        decoded output is averaged over the last half of the presentation.
        By default many samples are simulated side by side in one simulator
        (`popfit.conversion.batch`), each from the same initial state, so a
        prediction depends only on the sample and the seed, not on
        ``batch_size`` or ``n_jobs``. ``sequential=True`` runs the reference
        path instead: `ConvertedModel.network` itself, samples one after
        another without reset (`popfit.conversion.present`).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        presentation_time : float
            Seconds per sample (rounded to whole 1 ms time steps, at least 2, at
            most `MAX_PRESENTATION_STEPS` (100 s), and `MAX_TOTAL_STEPS` over
            all samples of one call).
            Below `min_presentation_time` (or 10 time steps) a `UserWarning`
            says the output may not settle; short presentations can still
            classify well, which is the user's call to check.
        progress_bar : bool, optional
            Nengo's progress bar; default: shown when the batch lasts
            20 s of simulated time or more (sequential), or, batched, from
            ``LONG_BATCH_NEURON_STEPS`` neuron updates in this process
            (about 20 s of wall time).
        batch_size : int, optional
            Samples per simulator (batched prediction); default: as many as
            fit a 256 MiB memory budget, split evenly over ``n_jobs``.
        n_jobs : int, optional
            Processes simulating chunks in parallel (joblib; -1: all CPUs, -2:
            all but one, as joblib counts); default 1. At most one process is
            started per chunk, and per CPU (`joblib.cpu_count`) on joblib's
            local backends; ``joblib.parallel_config`` selects other backends
            (a cluster's, e.g. Dask, is not capped by the local CPUs).
        simulator : callable, optional
            A nengo backend's ``Simulator`` class, called as
            ``simulator(network, dt=0.001, seed=seed, progress_bar=...)``
            (pass extra arguments with `functools.partial`, e.g.
            ``functools.partial(nengo_loihi.Simulator, target="sim")``);
            default `nengo.Simulator`.
        sequential : bool
            Use the sequential reference path (no ``batch_size`` or ``n_jobs``).

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
        """
        from .batch import BatchPlan, predict_batched

        X = check_samples(X, self.n_features_in_, "X")
        steps = _check_presentation_time(presentation_time, DT, len(X))
        progress_bar = _check_progress_bar(progress_bar)
        simulator = check_simulator(simulator)
        batch_size, n_jobs = _check_batching(batch_size, n_jobs, sequential)
        self._warn_short(presentation_time)
        if sequential:
            return present(self.network, X, presentation_time, dt=DT, seed=self.seed,
                           progress_bar=progress_bar, simulator=simulator)
        seed = self.seed
        if seed is None:  # one draw per call: every chunk starts from the same state
            seed = int(np.random.default_rng().integers(2**32))
        plan = BatchPlan(self, steps, DT, seed, simulator)
        if progress_bar is None:
            progress_bar = n_jobs == 1 and (
                len(X) * self.total_neurons * steps >= LONG_BATCH_NEURON_STEPS)
        return predict_batched(plan, X, batch_size, n_jobs, progress_bar)

    def _outputs(self, decoded):
        return apply_activation(self.spec.output.activation, decoded)

    def _proba(self, out):
        if self.spec.output.activation == "sigmoid" and out.shape[1] == 1 \
                and not self.spec.multilabel:
            return np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    def _labels(self, out):
        if self.spec.multilabel:
            return (out > 0.5).astype(int)
        if out.shape[1] == 1:
            return self.classes_[(out[:, 0] > 0.5).astype(int)]
        return self.classes_[np.argmax(out, axis=1)]

    @public("ConvertedModel.predict")
    def predict(self, X, presentation_time=0.1, progress_bar=None, **options):
        """Predictions of the spiking network.

        Classifiers return class labels (as the source model's ``predict``);
        regressors return the output values (shape ``(n_samples,)`` for a
        single-output scikit-learn regressor, else ``(n_samples, n_outputs)``).
        See `decoded_output` for the parameters (``options``: ``batch_size``,
        ``n_jobs``, ``simulator``, ``sequential``).
        """
        out = self._outputs(self.decoded_output(X, presentation_time, progress_bar,
                                                **options))
        if self.is_classifier:
            return self._labels(out)
        return out[:, 0] if self.spec.ravel_output else out

    def _check_classifier(self):
        if not self.is_classifier:
            raise AttributeError(
                f"predict_proba is only available for classifiers; this model converted "
                f"from {self.spec.source} is a regressor (use predict); a Keras model with "
                "a sigmoid or softmax output converts as a classifier with "
                "popfit.convert(..., task='classifier')")
        return True

    @available_if(_check_classifier)
    @public("ConvertedModel.predict_proba")
    def predict_proba(self, X, presentation_time=0.1, progress_bar=None, **options):
        """Class probabilities of the spiking network (classifiers only).

        Shape ``(n_samples, n_classes)``, as the source model's
        ``predict_proba`` (Keras: ``model.predict``). See `decoded_output`
        for the parameters (``options``: ``batch_size``, ``n_jobs``,
        ``simulator``, ``sequential``).
        """
        return self._proba(self._outputs(
            self.decoded_output(X, presentation_time, progress_bar, **options)))

    def _check_targets(self, y, n_samples):
        """``y`` as an array of the shape `predict` returns for ``n_samples`` samples."""
        n_out = self.spec.output.n_out
        if self.is_classifier and not self.spec.multilabel:
            shapes, what = [(n_samples,), (n_samples, 1)], f"({n_samples},) of class labels"
        elif self.is_classifier:
            shapes, what = [(n_samples, n_out)], f"({n_samples}, {n_out}) of 0/1 labels"
        else:
            shapes = [(n_samples,), (n_samples, n_out)] if n_out == 1 \
                else [(n_samples, n_out)]
            what = " or ".join(str(s) for s in shapes) + " of target values"
        y = np.asarray(y)
        if y.ndim == 0:
            raise PopfitValueError(
                f"y must be an array of shape {what} (got the scalar {y.item()!r:.50})")
        if len(y) != n_samples:
            raise PopfitValueError(
                f"y has {len(y)} samples but X has {n_samples}; y must have shape {what}")
        if y.shape not in shapes:
            raise PopfitValueError(
                f"y must have shape {what} for this "
                f"{'multi-label ' if self.spec.multilabel else ''}"
                f"{'classifier' if self.is_classifier else 'regressor'} (got shape {y.shape})")
        if not self.is_classifier:
            if np.iscomplexobj(y) or not np.issubdtype(y.dtype, np.number):
                raise PopfitValueError(
                    f"y must be real numbers for a regressor (got dtype {y.dtype})")
            if not np.all(np.isfinite(y)):
                raise PopfitValueError("y contains NaN or infinite values")
        return y.reshape(shapes[0]) if self.is_classifier else y

    @public("ConvertedModel.score")
    def score(self, X, y, presentation_time=0.1, progress_bar=None, **options):
        """Accuracy (classifiers; subset accuracy for multi-label) or R^2 (regressors).

        As scikit-learn's ``score``: `sklearn.metrics.accuracy_score`, or
        `sklearn.metrics.r2_score` averaged uniformly over outputs.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like
            Shape ``(n_samples,)`` (class labels, or a single-output
            regressor's targets), ``(n_samples, n_outputs)`` (regressors) or
            ``(n_samples, n_labels)`` (multi-label classifiers).
        presentation_time, progress_bar, **options
            As in `decoded_output`.

        Returns
        -------
        float
        """
        X = check_samples(X, self.n_features_in_, "X")
        y = self._check_targets(y, len(X))
        pred = self.predict(X, presentation_time, progress_bar, **options)
        if self.is_classifier:
            return float(accuracy_score(y, pred))
        return float(r2_score(y, pred.reshape(y.shape), multioutput="uniform_average"))

    @public("ConvertedModel.neuron_weights")
    def neuron_weights(self, per_neuron=False):
        """``(weights, biases)``: the weights leaving each hidden layer's neurons, as run.

        Parameters
        ----------
        per_neuron : bool
            False (default): ``weights[l]``, shape ``(n_next, n_neurons_l)``,
            maps hidden layer ``l``'s neurons to the next layer's units (the
            outputs, for the last): the re-solved weights (`refit`), or the
            source model's weights with the decoders folded in. A model
            converted with ``weight_bits`` has no such form (each receiving
            neuron's weights are rounded separately, ``gain * weight``), so
            this raises `PopfitValueError`; use ``per_neuron=True``.
            True: ``weights[l]`` for every hidden layer but the last is the
            transform of the connection from layer ``l``'s neurons to layer
            ``l + 1``'s neurons in `network`, shape ``(n_neurons_l+1,
            n_neurons_l)``, exactly as the network holds it (rounded with
            ``weight_bits``; nengo multiplies it by the receiving neurons'
            gains): a `scipy.sparse.csr_matrix` for a Sparse transform, an
            ndarray for a Dense one. The last is as with ``per_neuron=False``
            (the output is decoded off chip and never rounded).

        Returns
        -------
        weights : list of ndarray or scipy.sparse.csr_matrix
        biases : list of ndarray
            ``biases[l]``, shape ``(n_next,)``: the input bias of hidden layer
            ``l + 1``'s units (the output bias, for the last).
        """
        per_neuron = check_bool(per_neuron, "per_neuron")
        if not per_neuron and self.weight_bits is not None:
            raise PopfitValueError(
                f"this model was converted with weight_bits={self.weight_bits}: the rounded "
                "weights into each neuron (gain * weight, one step per connection) differ "
                "per receiving neuron and have no unit-level form (per_neuron=False); use "
                "neuron_weights(per_neuron=True) for the weights the network runs")
        weights, biases = self._unit_weights()
        if per_neuron:
            weights = [_connection_matrix(self._connection_into(i + 1)) for i in
                       range(len(self.spec.hidden) - 1)] + weights[-1:]
        return weights, biases

    def _unit_weights(self):
        if self.weights is not None:
            return list(self.weights), list(self.biases)
        nxt = self.spec.layers[1:]
        return ([folded_weights(fit, layer.weights) for fit, layer in zip(self.fits, nxt)],
                [layer.bias.astype(float) for layer in nxt])

    def _connection_into(self, i):
        """The one connection into hidden layer ``i``'s neurons in `network`."""
        ens = self.network.layers[i].ensemble
        conns = [c for c in self.network.all_connections
                 if getattr(c.post_obj, "ensemble", None) is ens]
        if len(conns) != 1:
            raise PopfitValueError(
                f"hidden layer {i} of the network has {len(conns)} connections into its "
                "neurons (expected 1): the network was changed after convert")
        return conns[0]

    def _first_layer_gains(self):
        """Current per unit input of each first-layer neuron, as the network runs it.

        Neuron ``n`` of unit ``u`` receives ``c[n] * (x @ W)[u]`` from the
        input (``W``: the source model's first weights; its bias is in the
        neurons' bias currents): ``c = gain * encoders``, or its rounding
        with ``weight_bits`` (the connection into the neurons is on chip).
        Read from `network`.

        Returns
        -------
        ndarray, shape (n_neurons_0,)
        """
        layer = self.network.layers[0]
        conn = self._connection_into(0)
        t = _connection_matrix(conn)
        t = t.toarray() if scipy.sparse.issparse(t) else np.asarray(t)
        n = layer.fit.n_neurons
        unit = np.repeat(np.arange(layer.n_units), n)
        c = np.asarray(layer.ensemble.gain, dtype=float) * t[np.arange(len(unit)), unit]
        if conn.pre_obj is not layer.input:  # hardware="loihi": fed x / input_scale
            c = c / layer.input_scale[unit]
        return c

    @public("ConvertedModel.rate_output")
    def rate_output(self, X):
        """What the network computes without spike noise (rate level, numpy, no simulation).

        Each hidden unit is replaced by its fit's rate curves
        (`PopulationFit.rates`, decoded by `PopulationFit.predict`, or by the
        re-solved `weights`); the output nonlinearity is applied. It
        describes the model that runs: with ``weight_bits``, the rounded
        weights `network` holds (`popfit.loihi.rate_forward`), as `predict`
        and `decoded_output` use them. Shape ``(n_samples, n_outputs)``.
        """
        a = check_samples(X, self.n_features_in_, "X")
        if self.weight_bits is not None:
            from ..loihi import rate_forward

            return self._outputs(rate_forward(self, a))
        if self.weights is not None:
            return self._outputs(forward(self.spec, self.fits, self.weights, self.biases,
                                         a)[1])
        for layer, fit in zip(self.spec.hidden, self.fits):
            a = fit.predict(a @ layer.weights + layer.bias)
        out = self.spec.output
        return self._outputs(a @ out.weights + out.bias)

    # ----------------------------------------------------------------- reporting
    @property
    def total_neurons(self):
        """Neurons in all hidden layers."""
        return sum(info.n_units * fit.n_neurons for info, fit in zip(self.layers, self.fits))

    def summary(self):
        """JSON-safe description: layers, units, neurons, domains, fits and rates."""
        hidden = []
        for info, fit in zip(self.layers, self.fits):
            n = info.n_units * fit.n_neurons
            hidden.append({
                "label": info.label,
                "activation": info.activation,
                "n_units": info.n_units,
                "n_neurons_per_unit": fit.n_neurons,
                "n_neurons": n,
                "domain": [info.domain[0], info.domain[1]],
                "fraction_outside_domain": info.fraction_outside,
                "fit_nrmse": fit.nrmse,
                "fit_spiking_nrmse": fit.spiking_nrmse,
                "mean_rate_hz": info.mean_rate,
                "mean_rate_basis": info.rate_basis,
                "spikes_per_second": info.mean_rate * n,
            })
        out = self.spec.output
        return {
            "source": self.spec.source,
            "task": "classifier" if self.is_classifier else "regressor",
            "n_features": self.n_features_in_,
            "n_outputs": out.n_out,
            "output_activation": out.activation,
            "output_label": out.label,
            "neuron_type": repr(self.neuron_type),
            "n_neurons_per_unit": (int(self.n_neurons)
                                   if isinstance(self.n_neurons, numbers.Integral)
                                   else [int(n) for n in self.n_neurons]),
            "max_rate": self.max_rate,
            "synapse": self.synapse,
            "noise_synapse": self.fits[0].synapse,
            "seed": self.seed,
            "calibrated": self.layers[0].fraction_outside is not None,
            "n_fits": len({id(f) for f in self.fits}),
            "hidden_layers": hidden,
            "refit": None if self.refit_report is None else self.refit_report.to_dict(),
            "total_neurons": self.total_neurons,
            "expected_spikes_per_second": float(sum(h["spikes_per_second"] for h in hidden)),
            "min_presentation_time": self.min_presentation_time,
            "convert_time": self.convert_time,
            "hardware": self.hardware,
            "weight_bits": self.weight_bits,
            "quantization_cost": None if self.quantization is None
            else self.quantization["cost"],
        }

    def report(self):
        """A plain-text summary (returned, not printed)."""
        s = self.summary()
        lines = [
            f"[[popfit converted model]] {s['source']} ({s['task']}), "
            f"{s['n_features']} inputs -> {s['n_outputs']} outputs",
            f"    neurons       : {s['n_neurons_per_unit']} x {s['neuron_type']} per unit, "
            f"max_rate {s['max_rate']:g} Hz, synapse {s['synapse']:g} s",
            "    noise model   : fits optimized for spike noise at "
            + ("no synapse (rates only)" if s["noise_synapse"] is None
               else f"{s['noise_synapse']:g} s"),
            "    domains       : "
            + ("from calibration data (99th percentile of |pre-activation|)"
               if s["calibrated"] else "activation defaults (no calibration data)"),
            f"    fits          : {s['n_fits']} distinct, converted in {s['convert_time']:.2f} s",
            "[[layers]]",
            "    layer                       activation  units  neurons  domain"
            "            outside   fit NRMSE  mean rate",
        ]
        for h in s["hidden_layers"]:
            outside = ("    n/a" if h["fraction_outside_domain"] is None
                       else f"{100 * h['fraction_outside_domain']:6.2f}%")
            dom = f"[{h['domain'][0]:.3g}, {h['domain'][1]:.3g}]"
            err = h["fit_spiking_nrmse"]  # expected at noise_synapse, or rate-only
            err = h["fit_nrmse"] if err is None else err
            lines.append(
                f"    {h['label'][:27]:<27} {h['activation']:<11} {h['n_units']:5d}  "
                f"{h['n_neurons']:7d}  {dom:<16} {outside}  {err:10.4f}"
                f"  {h['mean_rate_hz']:6.1f} Hz")
        lines.append(
            f"    {s['output_label'][:27]:<27} {s['output_activation']:<11} "
            f"{s['n_outputs']:5d}        -  decoded to a Node; nonlinearity in numpy")
        lines.append(
            f"    total: {s['total_neurons']} neurons, about "
            f"{s['expected_spikes_per_second']:.0f} spikes/s "
            f"(mean rates over the {s['hidden_layers'][0]['mean_rate_basis']})")
        lines.append(f"    min presentation_time: {s['min_presentation_time']:g} s")
        r = s["refit"]
        if r is not None:
            kept = ", ".join("re-solved" if k else "kept (re-solve not better)"
                             for k in r["kept"])
            lines += [
                "[[refit]] weights leaving each hidden layer re-solved for its neurons "
                f"(noise model {r['noise_synapse']:g} s; layers: {kept})",
                f"    held-out rate-level error ({r['n_holdout']} of "
                f"{r['n_fit'] + r['n_holdout']} calibration samples; solved on the rest):",
                f"    decoded output RMS {r['output_rms_before']:.4g} -> "
                f"{r['output_rms_after']:.4g}; after the {s['output_activation']} "
                f"nonlinearity, mean |error| {r['output_mae_before']:.3g} -> "
                f"{r['output_mae_after']:.3g}",
            ]
        if self.hardware == "loihi" or self.weight_bits is not None:
            from ..loihi import report_lines

            lines += report_lines(self)
        return "\n".join(lines)

    def __repr__(self):
        return (f"ConvertedModel(source={self.spec.source!r}, hidden="
                f"{[i.n_units for i in self.layers]}, n_neurons={self.n_neurons}, "
                f"neuron_type={self.neuron_type!r}, refit={self.weights is not None})")
