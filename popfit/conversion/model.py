"""`ConvertedModel`: a trained model converted to populations of spiking neurons.

It predicts by simulating its network (batched: `popfit.conversion.batch`;
sequential: `popfit.conversion.present`), at rate level without simulation
(`rate_output`), and reports what it is (`popfit.conversion.report`).
"""

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.metaestimators import available_if

from .._validation import check_bool, public, user_stacklevel
from ..exceptions import PopfitValueError
from ..loihi import report_lines, reports_on
from ..platforms import get_platform
from ..targets import apply_activation
from .batch import BatchPlan, connection_matrix, predict_batched
from .present import (
    DT,
    LONG_BATCH_NEURON_STEPS,
    MIN_SYNAPSES_PER_PRESENTATION,
    SETTLE_STEPS,
    check_batching,
    check_presentation_time,
    check_progress_bar,
    check_simulator,
    present,
)
from .quantize import rate_forward
from .refit import folded_weights, forward, links_of
from .report import format_report
from .spec import check_samples


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
        by ``connection_synapse``; ``network.layers`` lists the `popfit.PopulationLayer`
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
    neuron_type, n_neurons, max_rate, connection_synapse, seed
        The conversion settings (``n_neurons`` per hidden unit: an int, or a
        tuple with one count per hidden layer; the fits' noise-model
        ``synapse`` is each fit's ``synapse``).
    platform : popfit.platforms.Platform
        Where the network runs (resolved): `decoded_output`'s default simulator;
        `popfit.to_nir`'s default platform when it exports NIR.
    weights, biases : tuple of ndarray or None
        With ``refit``: ``weights[l]``, shape ``(n_next, n_neurons_l)``, the
        re-solved weights from hidden layer ``l``'s neurons to the next
        layer's units (the outputs, for the last), and ``biases[l]`` the next
        layer's input bias. None without refit (the source model's weights
        with the decoders folded in).
    skip_weights : dict
        With ``refit``: the weights of skip (merge) connections as the network
        runs them, ``{(source, target): ndarray}`` from hidden layer
        ``source``'s neurons to layer ``target``'s units (re-solved, or the
        standard ones where the re-solve was not kept, as ``weights``); empty
        for a chain of layers or without ``refit``.
    refit_report : popfit.conversion.refit.RefitReport or None
        Held-out rate-level errors before and after the re-solve.
    weight_bits, quantization : int or None, dict or None
        Set by `popfit.conversion.quantize.quantize_model` (the platform's
        ``weight_bits``; its copy's network holds rounded weights): the bits,
        each rounded connection, the float weights, and the rate-level cost.
    """

    def __init__(self, spec, fits, layers, network, *, neuron_type, n_neurons, max_rate,
                 connection_synapse, seed=None, convert_time=0.0, weights=None,
                 biases=None, refit_report=None, platform=None, weight_bits=None,
                 quantization=None, skip_weights=None):
        self.spec = spec
        self.fits = tuple(fits)
        self.layers = tuple(layers)
        self.network = network
        self.neuron_type = neuron_type
        self.n_neurons = n_neurons
        self.max_rate = max_rate
        self.connection_synapse = connection_synapse
        self.seed = seed
        self.convert_time = convert_time
        self.weights = None if weights is None else tuple(weights)
        self.biases = None if biases is None else tuple(biases)
        self.skip_weights = dict(skip_weights or {})
        self.refit_report = refit_report
        self.is_classifier = spec.is_classifier
        self.classes_ = spec.classes
        self.n_features_in_ = spec.n_features
        self.platform = get_platform(platform)
        self.weight_bits = weight_bits
        self.quantization = quantization

    # ----------------------------------------------------------------- running
    @property
    def min_presentation_time(self):
        """Recommended shortest ``presentation_time`` (s): 5 synapses per hidden layer.

        Shorter presentations are allowed (down to 2 time steps) with a warning.
        """
        return MIN_SYNAPSES_PER_PRESENTATION * self.connection_synapse * len(self.layers)

    def _warn_short(self, presentation_time):
        """Warn when ``presentation_time`` (checked) is below the recommended minimum."""
        low = max(self.min_presentation_time, SETTLE_STEPS * DT)
        if presentation_time < low - 1e-12:
            warnings.warn(
                f"presentation_time {presentation_time:g} s is below {low:g} s "
                f"({MIN_SYNAPSES_PER_PRESENTATION} x connection_synapse "
                f"({self.connection_synapse:g} s) per hidden layer ({len(self.spec.hidden)}), "
                f"and {SETTLE_STEPS} time "
                "steps): the output may not settle before it is read over the last "
                "half of each presentation; check the accuracy against a longer "
                "presentation", UserWarning, stacklevel=user_stacklevel())

    @public
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
            all samples of one call). Below `min_presentation_time` (or 10
            time steps) a `UserWarning` says the output may not settle.
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
            (extra arguments with `functools.partial`). Default:
            ``platform.make_simulator()``, else `nengo.Simulator`: ``platform="loihi"``
            runs on nengo-loihi's emulator (needs ``popfit[loihi]``).
        sequential : bool
            Use the sequential reference path (no ``batch_size`` or ``n_jobs``).

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
        """
        X = check_samples(X, self.n_features_in_, "X", self.spec.input_shape)
        steps = check_presentation_time(presentation_time, DT, len(X))
        progress_bar = check_progress_bar(progress_bar)
        simulator = check_simulator(
            self.platform.make_simulator() if simulator is None else simulator)
        batch_size, n_jobs = check_batching(batch_size, n_jobs, sequential)
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

    @public
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
    @public
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

    @public
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
        X = check_samples(X, self.n_features_in_, "X", self.spec.input_shape)
        y = self._check_targets(y, len(X))
        pred = self.predict(X, presentation_time, progress_bar, **options)
        if self.is_classifier:
            return float(accuracy_score(y, pred))
        return float(r2_score(y, pred.reshape(y.shape), multioutput="uniform_average"))

    @public
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
        self.spec.check_chain("neuron_weights")
        if not per_neuron and self.weight_bits is not None:
            raise PopfitValueError(
                f"this model was converted with weight_bits={self.weight_bits}: the rounded "
                "weights into each neuron (gain * weight, one step per connection) differ "
                "per receiving neuron and have no unit-level form (per_neuron=False); use "
                "neuron_weights(per_neuron=True) for the weights the network runs")
        weights, biases = self._unit_weights()
        if per_neuron:
            weights = [connection_matrix(self._connection_into(i + 1)) for i in
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

    @public
    def rate_output(self, X):
        """What the network computes without spike noise (rate level, numpy, no simulation).

        Each hidden unit is replaced by its fit's rate curves
        (`PopulationFit.rates`, decoded by `PopulationFit.predict`, or by the
        re-solved `weights`); the output nonlinearity is applied. It
        describes the model that runs: with ``weight_bits``, the rounded
        weights `network` holds (`popfit.conversion.quantize.rate_forward`), as `predict`
        and `decoded_output` use them. Shape ``(n_samples, n_outputs)``.
        """
        a = check_samples(X, self.n_features_in_, "X", self.spec.input_shape)
        if self.weight_bits is not None:
            return self._outputs(rate_forward(self, a))
        if self.weights is not None:
            links = links_of(self.weights, self.skip_weights)
            return self._outputs(forward(self.spec, self.fits, links, self.biases,
                                         a)[1])
        return self._outputs(self.spec.forward(a, [fit.predict for fit in self.fits])[0][-1])

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
                "total_neurons": n,
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
            "connection_synapse": self.connection_synapse,
            "synapse": self.fits[0].synapse,
            "seed": self.seed,
            "calibrated": self.layers[0].fraction_outside is not None,
            "n_fits": len({id(f) for f in self.fits}),
            "hidden_layers": hidden,
            "refit": None if self.refit_report is None else self.refit_report.to_dict(),
            "total_neurons": self.total_neurons,
            "expected_spikes_per_second": float(sum(h["spikes_per_second"] for h in hidden)),
            "min_presentation_time": self.min_presentation_time,
            "convert_time": self.convert_time,
            "platform": self.platform.name,
            "weight_bits": self.weight_bits,
            "quantization_cost": None if self.quantization is None
            else self.quantization["cost"],
        }

    def report(self):
        """A plain-text summary (returned, not printed): `popfit.conversion.report`.

        A model for nengo-loihi (``platform="loihi"``, ``weight_bits`` or a
        whole-step neuron type: `popfit.loihi.reports_on`) ends with its
        ``[[loihi]]`` chip mapping, which says whether nengo-loihi will build it.
        """
        return format_report(self.summary(),
                             report_lines(self) if reports_on(self) else ())

    def __repr__(self):
        return (f"ConvertedModel(source={self.spec.source!r}, hidden="
                f"{[i.n_units for i in self.layers]}, n_neurons={self.n_neurons}, "
                f"neuron_type={self.neuron_type!r}, refit={self.weights is not None})")
