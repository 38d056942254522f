"""The source-independent part of model conversion.

A trained model is first read into a `ModelSpec` (a chain of `DenseSpec`
layers, ``y = activation(x @ weights + bias)``) by `popfit.conversion.sklearn`
or `popfit.conversion.keras`. `convert` then

1. picks each hidden layer's input domain: symmetric ``(-m, m)`` with ``m``
   the 99th percentile of ``|pre-activation|`` over ``calibration_data``
   (floored at a quarter of the activation's default half-width), or the
   activation's default domain without calibration data;
2. fits one population per hidden layer with `popfit.fit_activation`,
   shared by all its units, with the layer's calibration pre-activations as
   ``eval_points`` (the fit's error is weighted by where the inputs fall);
   without calibration data, one fit per distinct (activation, domain),
   shared by every unit that uses it;
3. builds a `nengo.Network`: an input Node, one `popfit.PopulationLayer` per
   hidden layer (biases folded into the neurons' bias currents), layers
   connected neuron to neuron with the decoders folded into the weights, and
   the last layer decoded into an output Node (plus a constant Node for the
   output bias). The output nonlinearity (softmax, logistic, ...) is applied
   in numpy after simulation.
"""

import numbers
import time
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from .._validation import check_int, check_positive, check_synapse, public
from ..exceptions import PopfitTypeError, PopfitValueError
from ..network import check_hardware
from ..neurons import check_max_rate, resolve_neuron_type

#: Hidden activations a population can replace (popfit target names).
HIDDEN_ACTIVATIONS = ("tanh", "sigmoid", "linear", "relu")
#: Output activations applied in numpy to the decoded output.
OUTPUT_ACTIVATIONS = ("linear", "sigmoid", "softmax", "tanh", "relu", "exp")

CALIBRATION_PERCENTILE = 99.0
#: The calibrated half-width is at least this fraction of the default half-width.
DOMAIN_FLOOR_FRACTION = 0.25
#: presentation_time must be at least this many synapse time constants per
#: filtered stage (one per hidden layer).
MIN_SYNAPSES_PER_PRESENTATION = 5
#: Simulated seconds from which `predict` shows nengo's progress bar by default.
LONG_BATCH_SECONDS = 20.0
DT = 0.001


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


_NUMPY_ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "exp": np.exp,
}


def apply_activation(name, z):
    """Apply activation ``name`` (one of `OUTPUT_ACTIVATIONS`) to ``z`` in numpy."""
    return _NUMPY_ACTIVATIONS[name](np.asarray(z, dtype=float))


@dataclass(frozen=True, eq=False)
class DenseSpec:
    """One dense layer of the source model: ``activation(x @ weights + bias)``.

    Attributes
    ----------
    weights : ndarray, shape (n_in, n_out)
    bias : ndarray, shape (n_out,)
    activation : str
        A name in `HIDDEN_ACTIVATIONS` (hidden layers) or `OUTPUT_ACTIVATIONS`
        (the output layer).
    label : str
        Where the layer came from (e.g. ``"coefs_[0]"`` or the Keras layer name),
        used in messages and the summary.
    """

    weights: np.ndarray
    bias: np.ndarray
    activation: str
    label: str

    @property
    def n_in(self):
        return self.weights.shape[0]

    @property
    def n_out(self):
        return self.weights.shape[1]


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A source model read into a chain of dense layers.

    Attributes
    ----------
    source : str
        Class name of the source model (``"MLPClassifier"``, ``"Sequential"``, ...).
    layers : tuple of DenseSpec
        Hidden layers, then the output layer (last).
    is_classifier : bool
    classes : ndarray or None
        Class labels (classifiers only).
    multilabel : bool
        True for a multi-label classifier (one logistic output per label).
    ravel_output : bool
        True when a single-output regressor returns shape ``(n_samples,)``
        (scikit-learn's convention) rather than ``(n_samples, 1)``.
    """

    source: str
    layers: Tuple[DenseSpec, ...]
    is_classifier: bool = False
    classes: Optional[np.ndarray] = None
    multilabel: bool = False
    ravel_output: bool = False

    @property
    def n_features(self):
        return self.layers[0].n_in

    @property
    def hidden(self):
        return self.layers[:-1]

    @property
    def output(self):
        return self.layers[-1]

    def forward(self, X):
        """The source model's own computation in numpy.

        Returns the pre-activations of every layer and the output
        (after the output activation).
        """
        a = np.asarray(X, dtype=float)
        pre = []
        for layer in self.layers:
            z = a @ layer.weights + layer.bias
            pre.append(z)
            a = apply_activation(layer.activation, z)
        return pre, a


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


def _model_kind(model):
    """``"sklearn"``, ``"keras"`` or None, from the modules of the model's classes."""
    for cls in type(model).__mro__:
        module = getattr(cls, "__module__", "") or ""
        root = module.split(".")[0]
        if root == "sklearn":
            return "sklearn"
        if root in ("keras", "tf_keras") or module.startswith("tensorflow.python.keras"):
            return "keras"
    return None


def read_model(model):
    """Read a supported trained model into a `ModelSpec`."""
    kind = _model_kind(model)
    if kind == "sklearn":
        from .sklearn import from_sklearn

        return from_sklearn(model)
    if kind == "keras":
        from .keras import from_keras

        return from_keras(model)
    raise PopfitTypeError(
        f"model must be a fitted scikit-learn MLPClassifier or MLPRegressor, "
        f"or a Keras 3 model (Sequential or functional chain of Dense and Activation "
        f"layers) (got {type(model).__name__}: {model!r:.200})"
    )


def check_samples(X, n_features, name):
    """Return ``X`` as a finite float array of shape ``(n_samples, n_features)``."""
    if isinstance(X, (str, bytes)) or X is None:
        raise PopfitTypeError(
            f"{name} must be an array of shape (n_samples, {n_features}) "
            f"(got {type(X).__name__})"
        )
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise PopfitValueError(
            f"{name} must be a numeric array of shape (n_samples, {n_features}) "
            f"({err})"
        ) from None
    if X.ndim != 2:
        raise PopfitValueError(
            f"{name} must be 2-D, shape (n_samples, {n_features}) (got shape "
            f"{X.shape}); reshape one sample with X.reshape(1, -1)"
        )
    if X.shape[1] != n_features:
        raise PopfitValueError(
            f"{name} has {X.shape[1]} features but the model expects "
            f"{n_features} (got shape {X.shape})"
        )
    if X.shape[0] == 0:
        raise PopfitValueError(f"{name} must have at least one sample (got 0)")
    if not np.all(np.isfinite(X)):
        raise PopfitValueError(f"{name} contains NaN or infinite values")
    return X


def default_domain(activation):
    from ..targets import get_named_target

    return get_named_target(activation).default_domain


def choose_domain(activation, z):
    """Symmetric domain ``(-m, m)`` from pre-activations ``z`` (or the default).

    Returns the domain and the fraction of ``z`` outside it (None without ``z``).
    """
    lo, hi = default_domain(activation)
    if z is None:
        return (float(lo), float(hi)), None
    floor = DOMAIN_FLOOR_FRACTION * 0.5 * (hi - lo)
    m = float(np.percentile(np.abs(z), CALIBRATION_PERCENTILE))
    m = max(float(f"{m:.3g}"), floor)  # 3 significant digits: readable, cacheable
    return (-m, m), float(np.mean(np.abs(z) > m))


@public("convert")
def convert(model, *, n_neurons=4, neuron_type="LIF", max_rate=400.0, synapse=0.005,
            noise_synapse=0.02,
            calibration_data=None, seed=None, hardware=None, weight_bits=None):
    """Convert a trained model into a spiking Nengo network of positive-only neurons.

    Every hidden unit becomes a small population fitted by
    `popfit.fit_activation`; one fit is made per distinct (activation, domain)
    and shared by all units that use it. Layers are `popfit.PopulationLayer`
    networks connected neuron to neuron (decoders folded into the weights,
    biases into the neurons' bias currents); the last hidden layer is decoded
    into an output Node, and the output nonlinearity is applied in numpy by
    `ConvertedModel.predict`.

    Parameters
    ----------
    model : sklearn MLPClassifier or MLPRegressor, or keras.Model
        A trained model. Hidden activations: tanh, logistic/sigmoid,
        identity/linear, relu. Keras models must be a chain of ``Dense`` and
        ``Activation`` layers; a softmax output makes the converted model a
        classifier (class labels ``0 .. k-1``), any other output a regressor.
    n_neurons : int
        Neurons per hidden unit (>= 1).
    neuron_type : str or nengo.neurons.NeuronType
        As in `popfit.fit_activation` (default ``"LIF"``).
    max_rate : float
        Highest firing rate (Hz) of any neuron over its layer's domain.
    synapse : float
        Lowpass time constant (s) of every neuron-to-neuron and output
        connection.
    noise_synapse : float or None
        Time constant (s) of the spike-noise model the fits are optimized for
        (`popfit.fit_activation`'s ``synapse``). Spike noise reaching the
        output is filtered by more than the connection synapse: by the next
        layer's membranes (``tau_rc`` = 20 ms for nengo's LIF) and by the
        read-out average over each presentation. So the default, 0.02 s,
        assumes more filtering than ``synapse`` and buys rate accuracy with
        it (digits benchmark, 4 neurons per unit: 0.02 s gave 97.33% and
        class probabilities 2.4e-4 from the ANN's; ``noise_synapse=synapse``
        gave 97.11% and 3.8e-4). ``None`` fits rates only, whose large
        cancelling decoders are noisy when spiking.
    calibration_data : array_like, shape (n_samples, n_features), optional
        Typical inputs (e.g. the training set). Each hidden layer's domain is
        then ``(-m, m)`` with ``m`` the 99th percentile of its units'
        ``|pre-activation|`` over these samples (at least a quarter of the
        activation's default half-width), and the pre-activations inside
        it are the fit's ``eval_points``. Without it, each activation's
        default domain is used (tanh (-3, 3), sigmoid (-6, 6), linear and
        relu (-1, 1)).
    seed : int, optional
        Seed for the fits and for the simulator (initial neuron states): the
        same seed gives identical predictions.
    hardware : None or "loihi"
        None (default): the network nengo's reference simulator runs fastest
        (block-sparse transforms). ``"loihi"``: the network also builds and
        runs unmodified on ``nengo_loihi.Simulator(model.network)``: Dense
        transforms where values cross between host and chip, the first
        layer's input scaled into nengo-loihi's [-1, 1] encoding range, the
        output decoded on the host (see `popfit.PopulationLayer` and
        docs/loihi.md); `report` then says how the model maps onto the chip.
        For fits of Loihi's whole-step rate curve also pass
        ``neuron_type="LoihiLIF"`` (needs ``popfit[loihi]``).
    weight_bits : int, optional
        Round the weights into every layer's neurons (those that run on chip)
        to ``weight_bits`` magnitude bits with one shared step per connection,
        as Loihi stores them (``weight_bits=8``); the network then computes
        what the chip computes. With ``calibration_data``, `report` states the
        rate-level cost (`popfit.loihi.quantization_cost`).

    Returns
    -------
    ConvertedModel

    Raises
    ------
    popfit.ConversionError
        Unsupported layer, activation or architecture.
    popfit.PopfitValueError, popfit.PopfitTypeError
        An unfitted model or an invalid argument.
    ImportError
        A Keras model without Keras 3 installed (``pip install popfit[keras]``).
    """
    from ..fit import fit_activation

    start = time.perf_counter()
    n_neurons = check_int(n_neurons, "n_neurons", low=1)
    neuron_type = resolve_neuron_type(neuron_type)
    max_rate = check_max_rate(max_rate, neuron_type)
    synapse = check_positive(synapse, "synapse")
    noise_synapse = check_synapse(noise_synapse, "noise_synapse")
    hardware = check_hardware(hardware)
    if weight_bits is not None:
        weight_bits = check_int(weight_bits, "weight_bits", low=2, high=16)
    if seed is not None:
        seed = check_int(seed, "seed", low=0)
    spec = read_model(model)
    pre = X_cal = None
    if calibration_data is not None:
        X_cal = check_samples(calibration_data, spec.n_features, "calibration_data")
        pre = spec.forward(X_cal)[0]

    cache = {}
    fits, infos = [], []
    for i, layer in enumerate(spec.hidden):
        z = None if pre is None else pre[i]
        domain, outside = choose_domain(layer.activation, z)
        if z is None:  # one fit per (activation, domain), shared
            key, eval_points = (layer.activation, domain), None
        else:  # fitted to this layer's pre-activations inside its domain
            key, eval_points = (layer.activation, domain, i), z[np.abs(z) <= domain[1]]
        if key not in cache:
            cache[key] = fit_activation(
                layer.activation, n_neurons, neuron_type=neuron_type, domain=domain,
                max_rate=max_rate, synapse=noise_synapse, eval_points=eval_points,
                seed=seed)
        fit = cache[key]
        if z is None:
            x, basis = np.linspace(domain[0], domain[1], 1001), "domain"
        else:
            x, basis = z.ravel(), "calibration"
        mean_rate = float(np.mean(fit.rates(x)))
        fits.append(fit)
        infos.append(LayerInfo(layer.label, layer.activation, layer.n_out, domain, outside,
                               mean_rate, basis))
    return ConvertedModel(spec, fits, infos, neuron_type=neuron_type, n_neurons=n_neurons,
                          max_rate=max_rate, synapse=synapse, seed=seed,
                          convert_time=time.perf_counter() - start, hardware=hardware,
                          weight_bits=weight_bits,
                          quantization_data=None if X_cal is None else X_cal[:500])


def build_network(spec, fits, synapse, seed=None, hardware=None):
    """The `nengo.Network` of a converted model (see `ConvertedModel.network`)."""
    import nengo

    from ..network import PopulationLayer

    net = nengo.Network(label=f"popfit.convert({spec.source})", seed=seed)
    with net:
        net.input = nengo.Node(size_in=spec.n_features, label="input")
        net.layers = []
        for i, (layer, fit) in enumerate(zip(spec.hidden, fits)):
            net.layers.append(PopulationLayer(
                fit, layer.n_out, label=f"hidden {i}: {layer.label} ({layer.activation})",
                input_bias=layer.bias, hardware=hardware))
        first = spec.hidden[0]
        nengo.Connection(net.input, net.layers[0].input, transform=first.weights.T,
                         synapse=None)
        for pre, post, layer in zip(net.layers[:-1], net.layers[1:], spec.hidden[1:]):
            pre.connect_to(post, transform=layer.weights.T, synapse=synapse)
        out = spec.output
        net.output = nengo.Node(size_in=out.n_out, label="output")
        net.layers[-1].connect_to(net.output, transform=out.weights.T, synapse=synapse)
        if np.any(out.bias != 0):
            bias = nengo.Node(out.bias.copy(), label="output bias")
            nengo.Connection(bias, net.output, synapse=None)
    return net


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
        The conversion settings (``n_neurons`` per hidden unit).
    quantization : dict or None
        With ``weight_bits``: each quantized connection (``"connections"``)
        and the rate-level cost on up to 500 calibration samples (``"cost"``,
        None without calibration data; `popfit.loihi.quantization_cost`).
    """

    def __init__(self, spec, fits, layers, *, neuron_type, n_neurons, max_rate, synapse,
                 seed=None, convert_time=0.0, hardware=None, weight_bits=None,
                 quantization_data=None):
        self.spec = spec
        self.fits = tuple(fits)
        self.layers = tuple(layers)
        self.neuron_type = neuron_type
        self.n_neurons = n_neurons
        self.max_rate = max_rate
        self.synapse = synapse
        self.seed = seed
        self.convert_time = convert_time
        self.is_classifier = spec.is_classifier
        self.classes_ = spec.classes
        self.n_features_in_ = spec.n_features
        self.hardware = hardware
        self.weight_bits = weight_bits
        self.network = build_network(spec, self.fits, synapse, seed, hardware)
        self.quantization = None
        if weight_bits is not None:  # round the on-chip weights (popfit.loihi)
            from ..loihi import quantization_cost, quantize_network

            self.quantization = {"connections": quantize_network(self.network, weight_bits)}
            self.quantization["cost"] = (None if quantization_data is None else
                                         quantization_cost(self, quantization_data))

    # ----------------------------------------------------------------- running
    @property
    def min_presentation_time(self):
        """Shortest allowed ``presentation_time`` (s): 5 synapses per hidden layer."""
        return MIN_SYNAPSES_PER_PRESENTATION * self.synapse * len(self.spec.hidden)

    def _check_presentation_time(self, presentation_time):
        if isinstance(presentation_time, bool) or not isinstance(presentation_time,
                                                                 numbers.Real):
            raise PopfitTypeError(
                f"presentation_time must be a number of seconds (got "
                f"{presentation_time!r} of type {type(presentation_time).__name__})")
        t = float(presentation_time)
        low = max(self.min_presentation_time, 10 * DT)
        if not np.isfinite(t) or t < low - 1e-12:
            raise PopfitValueError(
                f"presentation_time must be >= {low:g} s (got {t:g}): at least "
                f"{MIN_SYNAPSES_PER_PRESENTATION} x synapse ({self.synapse:g} s) per hidden "
                f"layer ({len(self.spec.hidden)}) and 10 time steps, so the output settles "
                "before it is read over the last half of each presentation")
        return max(int(round(t / DT)), 10)

    @public("ConvertedModel.decoded_output")
    def decoded_output(self, X, presentation_time=0.1, progress_bar=None):
        """Simulate the network on each sample; the decoded output before the nonlinearity.

        Each sample is presented for ``presentation_time`` seconds, one after
        another, by a `nengo.processes.PresentInput` Node; the decoded output
        is averaged over the last half of each presentation.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        presentation_time : float
            Seconds per sample, >= `min_presentation_time` (rounded to whole
            1 ms time steps).
        progress_bar : bool, optional
            Nengo's progress bar; default: shown when the batch lasts
            20 s of simulated time or more.

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
        """
        import nengo

        from ..network import ignore_max_rates_warnings

        X = check_samples(X, self.n_features_in_, "X")
        steps = self._check_presentation_time(presentation_time)
        n = len(X)
        if progress_bar is None:
            progress_bar = n * steps * DT >= LONG_BATCH_SECONDS
        # The PresentInput inputs are fixed at build time, so each call builds a
        # small wrapper around the (unchanged) converted network.
        with nengo.Network(label="popfit predict", seed=self.seed) as wrapper:
            wrapper.networks.append(self.network)
            stim = nengo.Node(nengo.processes.PresentInput(X, presentation_time=steps * DT),
                              label="samples")
            nengo.Connection(stim, self.network.input, synapse=None)
            probe = nengo.Probe(self.network.output, synapse=None)
        # The build can raise nengo's spurious `max_rates` warnings for neurons
        # whose threshold (with the folded-in layer bias) lies beyond x = 1; only
        # the build is wrapped, with a filter for exactly those messages.
        with ignore_max_rates_warnings():
            sim = nengo.Simulator(wrapper, dt=DT, progress_bar=progress_bar, seed=self.seed)
        with sim:
            sim.run_steps(n * steps)
        y = sim.data[probe].reshape(n, steps, -1)
        return y[:, steps // 2:, :].mean(axis=1)

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
    def predict(self, X, presentation_time=0.1, progress_bar=None):
        """Predictions of the spiking network.

        Classifiers return class labels (as the source model's ``predict``);
        regressors return the output values (shape ``(n_samples,)`` for a
        single-output scikit-learn regressor, else ``(n_samples, n_outputs)``).
        See `decoded_output` for the parameters.
        """
        out = self._outputs(self.decoded_output(X, presentation_time, progress_bar))
        if self.is_classifier:
            return self._labels(out)
        return out[:, 0] if self.spec.ravel_output else out

    @property
    def predict_proba(self):
        """Class probabilities of the spiking network (classifiers only).

        ``predict_proba(X, presentation_time=0.1, progress_bar=None)`` returns
        shape ``(n_samples, n_classes)``, as the source model's
        ``predict_proba`` (Keras: ``model.predict``).
        """
        if not self.is_classifier:
            raise AttributeError(
                f"predict_proba is only available for classifiers; this model converted "
                f"from {self.spec.source} is a regressor (use predict)")

        @public("ConvertedModel.predict_proba")
        def predict_proba(X, presentation_time=0.1, progress_bar=None):
            return self._proba(self._outputs(
                self.decoded_output(X, presentation_time, progress_bar)))

        return predict_proba

    @public("ConvertedModel.score")
    def score(self, X, y, presentation_time=0.1, progress_bar=None):
        """Accuracy (classifiers; subset accuracy for multi-label) or R^2 (regressors).

        R^2 is averaged uniformly over outputs, as scikit-learn's ``score``.
        """
        pred = self.predict(X, presentation_time, progress_bar)
        y = np.asarray(y)
        if len(y) != len(pred):
            raise PopfitValueError(
                f"y has {len(y)} samples but X has {len(pred)}")
        if self.is_classifier:
            if self.spec.multilabel:
                return float(np.mean(np.all(pred == y.reshape(pred.shape), axis=1)))
            return float(np.mean(pred == y.reshape(pred.shape)))
        y = y.astype(float).reshape(len(y), -1)
        p = pred.reshape(len(pred), -1)
        if y.shape != p.shape:
            raise PopfitValueError(
                f"y must have shape {pred.shape} (got {np.shape(y)})")
        ss_res = ((y - p) ** 2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                      np.where(ss_res == 0, 1.0, 0.0))
        return float(np.mean(r2))

    @public("ConvertedModel.rate_output")
    def rate_output(self, X):
        """What the network computes without spike noise (rate level, numpy, no simulation).

        Each hidden unit is replaced by its fit's rate curve
        (`PopulationFit.predict`); the output nonlinearity is applied.
        Shape ``(n_samples, n_outputs)``.
        """
        a = check_samples(X, self.n_features_in_, "X")
        for layer, fit in zip(self.spec.hidden, self.fits):
            a = fit.predict(a @ layer.weights + layer.bias)
        out = self.spec.output
        return self._outputs(a @ out.weights + out.bias)

    # ----------------------------------------------------------------- reporting
    @property
    def total_neurons(self):
        return sum(info.n_units for info in self.layers) * self.n_neurons

    def summary(self):
        """JSON-safe description: layers, units, neurons, domains, fits and rates."""
        hidden = []
        for info, fit in zip(self.layers, self.fits):
            n = info.n_units * self.n_neurons
            hidden.append({
                "label": info.label,
                "activation": info.activation,
                "n_units": info.n_units,
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
            "n_neurons_per_unit": self.n_neurons,
            "max_rate": self.max_rate,
            "synapse": self.synapse,
            "noise_synapse": self.fits[0].synapse,
            "seed": self.seed,
            "calibrated": self.layers[0].fraction_outside is not None,
            "n_fits": len({id(f) for f in self.fits}),
            "hidden_layers": hidden,
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
        if self.hardware == "loihi" or self.weight_bits is not None:
            from ..loihi import report_lines

            lines += report_lines(self)
        return "\n".join(lines)

    def __repr__(self):
        return (f"ConvertedModel(source={self.spec.source!r}, hidden="
                f"{[i.n_units for i in self.layers]}, n_neurons={self.n_neurons}, "
                f"neuron_type={self.neuron_type!r})")
