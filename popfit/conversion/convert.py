"""`convert`: calibrate each hidden layer's domain, fit its population, build the network.

A trained model is first read into a `ModelSpec` (`popfit.conversion.readers`).
`convert` then

1. picks each hidden layer's input domain: symmetric ``(-m, m)`` with ``m``
   the 99th percentile of ``|pre-activation|`` over ``calibration_data``
   (rounded up to 3 significant digits, floored at a quarter of the
   activation's default half-width), or the activation's default domain
   without calibration data;
2. fits one population per hidden layer with `popfit.fit_activation`,
   shared by all its units, with the layer's calibration pre-activations as
   ``eval_points`` (the fit's error is weighted by where the inputs fall);
   without calibration data, one fit per distinct (activation, domain),
   shared by every unit that uses it;
3. builds a `nengo.Network` (`build_network`): an input Node, one
   `popfit.PopulationLayer` per hidden layer (biases folded into the
   neurons' bias currents), layers connected neuron to neuron with the
   decoders folded into the weights, and the last layer decoded into an
   output Node (plus a constant Node for the output bias). The output
   nonlinearity (softmax, logistic, ...) is applied in numpy after simulation.
"""

import math
import numbers
import time

import numpy as np
import scipy.sparse

from .._validation import (
    DOMAIN_WIDTH_BOUNDS,
    check_int,
    check_positive,
    check_seed,
    check_synapse,
    public,
)
from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from ..fit import fit_activation
from ..metrics import grid
from ..network import PopulationLayer
from ..network.transforms import as_sparse
from ..neurons import check_max_rate, resolve_neuron_type
from ..platforms import get_platform
from .model import ConvertedModel, LayerInfo
from .quantize import quantize_model
from .readers import read_model
from .refit import enough_for_refit, links_of, refit_weights
from .spec import check_samples

CALIBRATION_PERCENTILE = 99.0
#: The calibrated half-width is at least this fraction of the default half-width.
DOMAIN_FLOOR_FRACTION = 0.25
#: Significant digits of a calibrated half-width (readable, and equal domains share a fit).
DOMAIN_DIGITS = 3
#: Largest calibrated half-width: the domain's width stays within the bound of
#: `popfit._validation.check_domain` after rounding up.
MAX_HALF_WIDTH = 0.49 * DOMAIN_WIDTH_BOUNDS[1]


def round_up(m, digits=DOMAIN_DIGITS):
    """The smallest number with ``digits`` significant digits that is >= ``m`` > 0."""
    r = float(f"{m:.{digits}g}")
    if r < m:  # rounded down: go up by one unit in the last digit
        r = float(f"{r + 10.0 ** (math.floor(math.log10(r)) - digits + 1):.{digits}g}")
    return r


def choose_domain(target, z, where="this layer"):
    """Symmetric domain ``(-m, m)`` from pre-activations ``z`` (or the default).

    ``target`` is the layer's curve (a `popfit.targets.Target`, with its
    default domain). ``m`` is rounded outward, so the domain always contains
    the calibration pre-activations at or below the percentile (at least one).
    Pre-activations too large for any domain popfit can fit
    (`MAX_HALF_WIDTH`) raise a `ConversionError` naming ``where``.

    Returns the domain and the fraction of ``z`` outside it (None without ``z``).
    """
    lo, hi = target.default_domain
    if z is None:
        return (float(lo), float(hi)), None
    floor = DOMAIN_FLOOR_FRACTION * 0.5 * (hi - lo)
    with np.errstate(over="ignore", invalid="ignore"):
        m = float(np.percentile(np.abs(z), CALIBRATION_PERCENTILE))
        m = round_up(m) if m > floor else floor
    if not m <= MAX_HALF_WIDTH:
        raise ConversionError(
            f"the calibration pre-activations of {where} are too large: the "
            f"{CALIBRATION_PERCENTILE:g}th percentile of their |value| is "
            f"{float(np.percentile(np.abs(z), CALIBRATION_PERCENTILE)):.3g}, above the "
            f"largest domain half-width popfit can fit ({MAX_HALF_WIDTH:.3g}); scale "
            "calibration_data to the range the model was trained on (e.g. the same "
            "sklearn.preprocessing.StandardScaler), or the layer's weights down")
    return (-m, m), float(np.mean(np.abs(z) > m))


#: Population sizes `n_neurons="auto"` tries, smallest first.
AUTO_NEURONS = tuple(range(1, 17))
#: Default share of the calibration data held out to check the weight re-solve.
REFIT_HOLDOUT = 0.2


def check_n_neurons(n_neurons, n_hidden):
    """Per-hidden-layer neurons per unit: a tuple of ints, or None for ``"auto"``."""
    if isinstance(n_neurons, np.ndarray) and n_neurons.ndim == 0:
        n_neurons = n_neurons.item()  # a 0-d array: its one value (checked below)
    if isinstance(n_neurons, str):
        if n_neurons != "auto":
            raise PopfitValueError(
                f"n_neurons must be an int >= 1, a list of them (one per hidden layer) or "
                f"'auto' (got the string {n_neurons!r})")
        return None
    if isinstance(n_neurons, (list, tuple, np.ndarray)):
        if len(n_neurons) != n_hidden:
            raise PopfitValueError(
                f"n_neurons has {len(n_neurons)} entries but the model has {n_hidden} "
                f"hidden layer(s); pass one int per hidden layer (got {list(n_neurons)!r})")
        return tuple(check_int(n.item() if isinstance(n, np.generic) else n,
                               f"n_neurons[{i}]", low=1) for i, n in enumerate(n_neurons))
    return (check_int(n_neurons, "n_neurons", low=1),) * n_hidden


def fit_error(fit):
    """The fit's expected error: spiking NRMSE at its synapse, or rate NRMSE (rates only)."""
    return fit.nrmse if fit.spiking_nrmse is None else fit.spiking_nrmse


@public
def convert(model, *, platform=None, n_neurons=4, neuron_type=None, max_rate=400.0,
            connection_synapse=0.005, synapse=0.02, calibration_data=None, seed=None,
            refit=None, refit_holdout=REFIT_HOLDOUT, tolerance=0.02, search=None, task=None):
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
    model : sklearn MLPClassifier, MLPRegressor or Pipeline, or keras.Model
        A trained model. Hidden activations: tanh, logistic/sigmoid,
        identity/linear, relu; a scikit-learn ``Pipeline`` of scalers and PCA
        ending in an MLP (`popfit.conversion.sklearn`). Keras models: a
        Sequential or functional graph (one input, one output) of Dense,
        convolution, average-pooling, padding, reshaping, normalization,
        merge (Add, Subtract, Average, Concatenate), dropout and activation
        layers (`popfit.conversion.keras_layers`; not a subclassed model);
        linear layers are folded exactly into the weights between
        populations (`popfit.conversion.keras_graph`), a convolution's as a
        sparse matrix, a merge's as extra (skip) connections.
        A Keras activation is identified by its function, not its name
        (Keras's own by identity; any other function by its values, to
        float32 precision): a hidden layer's elementwise function that is
        none of the named curves is fitted as a custom curve (activation
        ``"custom <name>"``, default domain (-3, 3) without calibration data);
        a function that is not elementwise, or a custom one on the output
        layer, raises `ConversionError`. A Keras model is a classifier when
        its output activation is softmax (class labels ``0 .. k-1``), or
        sigmoid and it was compiled with a cross-entropy loss (binary,
        categorical or sparse categorical, plain or focal): one sigmoid
        output is a binary classifier (labels 0/1 at the 0.5 threshold,
        `ConvertedModel.predict_proba` columns ``[1 - p, p]`` as
        scikit-learn's, `ConvertedModel.score` the accuracy), several a
        multi-label one; any other model is a regressor (an uncompiled
        sigmoid output, or a linear one compiled with a cross-entropy loss on
        logits, warns). Weights and biases must be finite, and
        scikit-learn's ``coefs_`` / ``intercepts_`` shapes must chain.
    platform : str or popfit.platforms.Platform, optional
        Where the network runs (`popfit.get_platform`; default ``"nengo"``,
        nengo's reference simulator). It sets the neuron type fitted (when
        ``neuron_type`` is None), the weight precision (``weight_bits``: the
        weights into every layer's neurons, those that run on chip, are
        rounded to that many magnitude bits with one step shared by all the
        connections into a layer, as Loihi stores them, so the network computes what the
        chip computes; with ``calibration_data`` `report` states the
        rate-level cost, `popfit.conversion.quantize.quantization_cost`), the
        transforms between host and neurons (`popfit.PopulationLayer`'s
        ``platform``) and the simulator `ConvertedModel.predict` uses by
        default. ``"loihi"`` is the whole nengo-loihi recipe: whole-step
        ``LoihiLIF`` fits (needs ``popfit[loihi]``), 8-bit weights, Dense
        transforms where values cross between host and chip, the first
        layer's input scaled into nengo-loihi's [-1, 1] encoding range, the
        output decoded on the host; the network builds and runs unmodified on
        ``nengo_loihi.Simulator(model.network)`` and `report` says how it maps
        onto the chip (docs/loihi.md). Override single fields with
        `popfit.get_platform`: ``get_platform("loihi", weight_bits=None)``
        (float weights), ``get_platform("nengo", weight_bits=8)`` (rounded
        weights in nengo's simulator). ``"nir"`` / ``"snntorch"`` fit for
        those NIR consumers, and `popfit.to_nir` then exports for them.
    n_neurons : int, list of int, or "auto"
        Neurons per hidden unit (>= 1); a list gives one count per hidden
        layer. ``"auto"`` picks, per hidden layer, the smallest count in
        1..16 whose fit's expected error (spiking NRMSE at ``synapse``,
        or rate NRMSE when it is None) is at most ``tolerance``, or 16 if none
        is (see `ConvertedModel.report`).
    neuron_type : str or nengo.neurons.NeuronType, optional
        As in `popfit.fit_activation`. Default: the platform's
        (``platform.fit_neuron_type()``; ``"LIF"`` for ``"nengo"``); given, it
        overrides the platform's.
    max_rate : float
        Highest firing rate (Hz) of any neuron over its layer's domain.
    connection_synapse : float
        Lowpass time constant (s) of every neuron-to-neuron and output
        connection.
    synapse : float or None
        Time constant (s) of the synapse filtering each population's output
        that the fits' spike-noise model assumes (`popfit.fit_activation`'s
        ``synapse``). Spike noise reaching the output is filtered by more
        than the connection synapse: by the next layer's membranes
        (``tau_rc`` = 20 ms for nengo's LIF) and by the read-out average over
        each presentation. So the default, 0.02 s, assumes more filtering
        than ``connection_synapse`` and buys rate accuracy with it (on the
        digits data set, 4 neurons per unit, it gave higher accuracy and
        class probabilities closer to the ANN's than
        ``synapse=connection_synapse``). ``None`` fits rates only, whose
        large cancelling decoders are noisy when spiking; ``refit`` then
        penalizes the spike noise at ``connection_synapse``.
    calibration_data : array_like, shape (n_samples, n_features), optional
        Typical inputs (e.g. the training set; or of shape ``(n_samples,
        *input_shape)`` for a Keras model with multi-dimensional inputs),
        real and finite: a numeric
        array or nested list (a scipy.sparse matrix of at most 2**24 values
        is densified; larger ones are refused). Each hidden
        layer's domain is then ``(-m, m)`` with ``m`` the 99th percentile of
        its units' ``|pre-activation|`` over these samples, rounded up to 3
        significant digits (at least a quarter of the activation's default
        half-width), and the pre-activations inside it are the fit's
        ``eval_points``. Without it, each activation's default domain is used
        (tanh (-3, 3), sigmoid (-6, 6), linear and relu (-1, 1)).
    seed : int, optional
        Seed in [0, 2**32 - 1] for the fits, the held-out split of ``refit``
        and the simulator (initial neuron states): the same seed gives
        identical predictions.
    refit : bool or "all", optional
        Re-solve the weights leaving every hidden layer for its actual
        populations (`popfit.conversion.refit`): by noise-regularized least
        squares on the calibration data, layer by layer, each layer fed by
        the previous converted layer, so that the next layer's
        pre-activations (the outputs, for the last) match the source
        model's. The penalty of each neuron's weights is its spike-noise
        variance at ``synapse`` (at ``connection_synapse`` if that is None). The
        network then connects each layer's neurons with these dense weights.
        A layer fed by several layers (skip or merge connections) has the
        weights from all of them solved together. Weights into a convolution
        (sparse) are kept as they are, with their weight sharing (so
        `popfit.to_nir` can export them as convolutions); ``refit="all"``
        re-solves them too, each unit's weights within its receptive field
        (the sparsity pattern is kept, the sharing is not: the layer becomes
        locally connected). Default: True when ``calibration_data`` has
        enough samples (at least 10 to solve on and 10 held out), else False;
        True without enough calibration data is an error.
    refit_holdout : float
        Share of ``calibration_data`` in (0, 1) held out from the re-solve:
        a layer keeps its re-solved weights only if they lower the held-out
        error significantly (by more than two standard errors of the paired
        per-sample difference), and the model keeps them only if its
        held-out output error is significantly lower than with the standard
        weights everywhere; `ConvertedModel.refit_report` gives the
        rate-level output error on it before and after.
    tolerance : float
        Largest expected fit NRMSE for ``n_neurons="auto"`` (> 0).
    search : popfit.SearchOptions, optional
        The search budget of every fit (`popfit.fit_activation`'s
        ``search``); ``SearchOptions.quick()`` converts faster with fits that
        are good but not the best.
    task : {"classifier", "regressor"}, optional
        Override the task read from the model (see ``model``): a Keras model
        with a sigmoid or softmax output can be converted as either; a
        scikit-learn model's class fixes its task. Default: from the model.

    Returns
    -------
    ConvertedModel

    Raises
    ------
    popfit.ConversionError
        Unsupported layer, activation or architecture, non-finite or
        inconsistently shaped weights, or calibration pre-activations too
        large for any domain.
    popfit.PopfitValueError, popfit.PopfitTypeError
        An unfitted model or an invalid argument.
    ImportError
        A Keras model without Keras 3 installed (``pip install popfit[keras]``).
    """
    start = time.perf_counter()
    platform = get_platform(platform)
    neuron_type = resolve_neuron_type(
        platform.fit_neuron_type() if neuron_type is None else neuron_type)
    max_rate = check_max_rate(max_rate, neuron_type)
    connection_synapse = check_positive(connection_synapse, "connection_synapse")
    synapse = check_synapse(synapse, "synapse")
    seed = check_seed(seed, allow_none=True)
    tolerance = check_positive(tolerance, "tolerance")
    refit_holdout = check_positive(refit_holdout, "refit_holdout", upper=1.0)
    refit_default = refit is None
    if refit is None:
        refit = calibration_data is not None
    elif isinstance(refit, str) and refit != "all":
        raise PopfitValueError(
            f"refit must be True, False, 'all' or None (got the string {refit!r}); 'all' "
            "also re-solves convolutions")
    elif not isinstance(refit, (bool, np.bool_, str)):
        raise PopfitTypeError(f"refit must be True, False, 'all' or None (got {refit!r})")
    elif refit and calibration_data is None:
        raise PopfitValueError(
            f"refit={refit!r} needs calibration_data (the weights are solved on it); pass "
            "calibration_data (e.g. the training inputs) or refit=False")
    spec = read_model(model, task)
    counts = check_n_neurons(n_neurons, len(spec.hidden))
    pre = X_cal = None
    if calibration_data is not None:
        X_cal = check_samples(calibration_data, spec.n_features, "calibration_data",
                              spec.input_shape)
        if refit and refit_default and not enough_for_refit(len(X_cal), refit_holdout):
            refit = False  # the default only: too few samples to solve on and hold out
    if X_cal is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            pre = spec.forward(X_cal)[0]
        for i, z in enumerate(pre[:-1]):
            if not np.all(np.isfinite(z)):
                raise ConversionError(
                    f"the pre-activations of {spec.source} layer {i} "
                    f"({spec.layers[i].label!r}) over calibration_data overflow to inf or "
                    "NaN; its weights or the calibration inputs are too large to simulate "
                    "(scale calibration_data to the range the model was trained on)")

    cache = {}
    fits, infos = [], []
    for i, layer in enumerate(spec.hidden):
        z = None if pre is None else pre[i]
        target = layer.target
        domain, outside = choose_domain(
            target, z, f"{spec.source} layer {i} ({layer.label!r})")
        # a custom curve is keyed by its layer: two functions may share a description
        name = layer.activation if layer.curve is None else ("custom", i)
        if z is None:  # one fit per (activation, domain), shared
            key, eval_points = (name, domain), None
        else:  # fitted to this layer's pre-activations inside its domain
            key, eval_points = (name, domain, i), z[np.abs(z) <= domain[1]]
        sizes = AUTO_NEURONS if counts is None else (counts[i],)
        for n in sizes:  # "auto": smallest population meeting the tolerance
            if key + (n,) not in cache:
                cache[key + (n,)] = fit_activation(
                    target, n, neuron_type=neuron_type, domain=domain,
                    max_rate=max_rate, synapse=synapse, eval_points=eval_points,
                    seed=seed, search=search)
            fit = cache[key + (n,)]
            if fit_error(fit) <= tolerance:
                break
        if z is None:
            x, basis = grid(domain), "domain"  # mean rates without calibration
        else:
            x, basis = z.ravel(), "calibration"
        mean_rate = float(np.mean(fit.rates(x)))
        fits.append(fit)
        infos.append(LayerInfo(layer.label, layer.activation, layer.n_out, domain, outside,
                               mean_rate, basis))
    weights = biases = report = skip_weights = None
    if refit:
        weights, biases, skip_weights, report = refit_weights(
            spec, fits, X_cal, holdout=refit_holdout,
            synapse=connection_synapse if synapse is None else synapse, seed=seed,
            convolutions=refit == "all")
    if not isinstance(n_neurons, numbers.Integral):  # a list, or "auto": the counts used
        n_neurons = tuple(fit.n_neurons for fit in fits)
    model = ConvertedModel(spec, fits, infos,
                           build_network(spec, fits, connection_synapse, seed, weights,
                                         biases, platform, skip_weights),
                           neuron_type=neuron_type, n_neurons=n_neurons, max_rate=max_rate,
                           connection_synapse=connection_synapse, seed=seed, weights=weights,
                           biases=biases, refit_report=report, platform=platform,
                           skip_weights=skip_weights)
    if platform.weight_bits is not None:  # round the weights into neurons as the chip stores them
        model = quantize_model(model, platform.weight_bits,
                               None if X_cal is None else X_cal[:500])
    model.convert_time = time.perf_counter() - start
    return model


def build_network(spec, fits, connection_synapse, seed=None, weights=None, biases=None,
                  platform=None, skip_weights=None):
    """The `nengo.Network` of a converted model (see `ConvertedModel.network`).

    Parameters
    ----------
    spec : ModelSpec
    fits : sequence of PopulationFit
        One per hidden layer of ``spec``.
    connection_synapse : float
        Lowpass time constant (s) of the neuron-to-neuron and output connections.
    seed : int, optional
        The network's seed.
    weights, biases : sequences of ndarray, optional
        Re-solved weights (``weights[l]``, shape ``(n_next, n_neurons_l)``) from
        each hidden layer's neurons to the next layer's units or the outputs,
        and the next layer's input bias (`popfit.conversion.refit`). Default:
        the source model's weights with the decoders folded in (block-sparse
        within a layer).
    platform : str or popfit.platforms.Platform, optional
        Passed to every `popfit.PopulationLayer` (its host transforms; see `convert`).
    skip_weights : dict, optional
        With ``weights``: the re-solved links of skip connections,
        ``{(source, target): ndarray}`` (`popfit.conversion.refit.refit_weights`).
    """
    import nengo

    net = nengo.Network(label=f"popfit.convert({spec.source})", seed=seed)
    with net:
        net.input = nengo.Node(size_in=spec.n_features, label="input")
        net.layers = []
        refit = weights is not None
        links = links_of(weights, skip_weights) if refit else None
        in_bias = [layer.bias for layer in spec.hidden[:1]] + list(
            biases[:-1] if refit else [layer.bias for layer in spec.hidden[1:]])
        for i, (layer, fit) in enumerate(zip(spec.hidden, fits)):
            net.layers.append(PopulationLayer(
                fit, layer.n_out, label=f"hidden {i}: {layer.label} ({layer.activation})",
                input_bias=in_bias[i], platform=platform))
        out = spec.output
        net.output = nengo.Node(size_in=out.n_out, label="output")
        targets = net.layers + [net.output]
        for j, layer in enumerate(spec.layers):
            for source, matrix in layer.inputs(j):
                if source == -1:  # host: the input Node into the layer's input Node
                    post = targets[j] if j == len(spec.hidden) else targets[j].input
                    nengo.Connection(net.input, post, synapse=None,
                                     transform=_host_transform(matrix.T))
                elif not matrix.shape[0] or (scipy.sparse.issparse(matrix) and not matrix.nnz):
                    continue  # no such input (a layer fed by skips alone)
                elif refit:
                    net.layers[source].connect_to(targets[j], weights=links[source, j],
                                                  connection_synapse=connection_synapse)
                else:
                    net.layers[source].connect_to(targets[j], transform=matrix.T,
                                                  connection_synapse=connection_synapse)
        out_bias = biases[-1] if refit else out.bias
        if np.any(out_bias != 0):
            bias = nengo.Node(np.array(out_bias, dtype=float), label="output bias")
            nengo.Connection(bias, net.output, synapse=None)
    return get_platform(platform).prepare(net)  # e.g. nengo-loihi block shapes


def _host_transform(matrix):
    """A transform between host Nodes: Sparse for a sparse matrix, else the array."""
    if scipy.sparse.issparse(matrix):
        return as_sparse(matrix)
    return matrix
