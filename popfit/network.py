"""Nengo export: one fitted signed unit, or a whole layer of them.

A fitted population is exported exactly as nengo describes it::

    ens = nengo.Ensemble(N, 1, neuron_type, gain=fit.gain, bias=fit.bias,
                         encoders=fit.encoders[:, None])
    nengo.Connection(input, ens, synapse=None)
    nengo.Connection(ens.neurons, output, transform=fit.decoders[None, :], synapse=None)

Only positive-only neuron types are used (`nengo.LIF`,
`nengo.SpikingRectifiedLinear`, or their rate twins `nengo.LIFRate`,
`nengo.RectifiedLinear` when ``spiking=False``): the sign of the unit lives in
the encoders and decoders, never in the spikes.

Nengo multiplies every connection into ``ensemble.neurons`` by the ensemble's
gain, so the transforms into neurons built here carry only the encoder signs
(and, between layers, the decoders and the user's transform); the gain stays
on the Ensemble.
"""


import warnings

import nengo
import numpy as np
import scipy.sparse

from ._validation import (
    check_bool,
    check_finite_array,
    check_int,
    check_real_array,
    check_seed,
    check_synapse,
    current_caller,
    public,
    user_stacklevel,
)
from .exceptions import PopfitTypeError, PopfitValueError
from .neurons import SUPPORTED, ignore_max_rates_warnings, rate_twin, spiking_twin  # noqa: F401
from .result import check_fit
from .wholestep import export_neuron_type as whole_step_export
from .wholestep import is_whole_step

#: Values of the ``hardware`` export option (`PopulationLayer`, `popfit.convert`).
HARDWARE = (None, "loihi")
#: nengo's default time step (s); `warn_tau_ref_below_dt` compares tau_ref with it.
NENGO_DT = 0.001
#: Most neurons a `PopulationLayer` may hold (``n_units * fit.n_neurons``):
#: generous for any layer nengo's reference simulator can run, and far below
#: what exhausts memory. Memory and time per step grow linearly with the
#: neurons; a larger layer would be killed by the operating system (or raise
#: a bare MemoryError) while being built, and would take seconds per step.
# Measured on a 2-core, 23 GB machine (tanh fit, 4 LIF per unit, input and
# output connected): 10**6 neurons build in 1.5 s, peak 0.34 GB, 0.12 s per
# step; 10**7 neurons in 18 s, peak 2.0 GB, 2.4 s per step; n_units = 10**9
# (2 neurons each) was killed for lack of memory while tiling the gains.
MAX_LAYER_NEURONS = 10_000_000


def check_hardware(hardware):
    """Return ``hardware`` (None or ``"loihi"``) or raise `PopfitValueError`."""
    if hardware is not None and not (isinstance(hardware, str) and hardware in HARDWARE):
        raise PopfitValueError(
            "hardware must be None (nengo's reference simulator: block-sparse "
            f"transforms) or 'loihi' (builds on nengo_loihi.Simulator) (got {hardware!r})")
    return hardware


#: Keyword arguments popfit's networks pass on to `nengo.Network` (besides ``label``).
NETWORK_KWARGS = ("seed", "add_to_container")


def _network_kwargs(label, kwargs):
    """Check the `nengo.Network` arguments popfit's networks pass on: ``label``
    (None or a string), ``seed`` (None or an int in [0, 2**32 - 1], what
    nengo's simulator accepts) and ``add_to_container`` (None, True or False)."""
    if label is not None and not isinstance(label, str):
        raise PopfitTypeError(
            f"label must be a string or None (got {label!r} of type {type(label).__name__})")
    unknown = sorted(set(kwargs) - set(NETWORK_KWARGS))
    if unknown:
        raise PopfitTypeError(
            f"unexpected keyword arguments {unknown}; besides its own arguments the "
            f"network takes nengo.Network's label, {' and '.join(NETWORK_KWARGS)}")
    if "seed" in kwargs:
        kwargs["seed"] = check_seed(kwargs["seed"], allow_none=True)
    if kwargs.get("add_to_container") is not None:
        kwargs["add_to_container"] = check_bool(kwargs["add_to_container"], "add_to_container")
    return kwargs


def warn_tau_ref_below_dt(neuron_type, dt=NENGO_DT):
    """Warn when a spiking nengo LIF has ``tau_ref < dt``.

    nengo's spiking `nengo.LIF` does not reach its rate model then: with
    ``tau_ref=0`` and ``J = 10`` it fires 333 Hz at ``dt = 1 ms`` where
    ``LIF.rates`` says 475 Hz, so a fit made against the rate model is wrong in
    ``nengo.Simulator``.
    """
    if isinstance(neuron_type, nengo.LIF) and neuron_type.tau_ref < dt:
        warnings.warn(
            f"{current_caller()}: spiking {neuron_type!r} has tau_ref = "
            f"{neuron_type.tau_ref:g} s < "
            f"dt = {dt:g} s: nengo's spiking LIF then fires below its rate model (tau_ref=0, "
            f"J=10: 333 Hz instead of 475 Hz), so the fitted decoders are wrong in "
            f"nengo.Simulator; fit with tau_ref >= {dt:g} s, or export with spiking=False",
            UserWarning, stacklevel=user_stacklevel())


def export_neuron_type(fit, spiking):
    """The positive-only neuron type that runs ``fit`` (spiking or rate).

    Raises `PopfitValueError` when the fit's neuron type has no positive-only
    spiking twin (``spiking=True``) or is not a type popfit supports.
    """
    nt = fit.neuron_type
    if is_whole_step(nt):  # nengo-loihi's whole-step types (popfit.wholestep)
        return whole_step_export(nt, spiking)
    twin = spiking_twin(nt) if spiking else None
    if spiking and twin is not None:
        warn_tau_ref_below_dt(twin)
    if type(nt) not in SUPPORTED or (spiking and twin is None):
        mode = "spiking=True" if spiking else "spiking=False"
        raise PopfitValueError(
            f"fit.neuron_type {nt!r} has no positive-only "
            f"{'spiking' if spiking else 'rate'} twin ({mode}); export supports fits of "
            "LIF, LIFRate, RectifiedLinear and SpikingRectifiedLinear"
        )
    return twin if spiking else rate_twin(nt)


class PopulationNeuron(nengo.Network):
    """One signed unit as a Nengo network of positive-only neurons.

    Drop it into any model: ``nengo.Connection(a, pop.input)`` and
    ``nengo.Connection(pop.output, b, synapse=...)``. The network adds no
    synapse of its own: the input Node drives the ensemble with
    ``synapse=None`` and the decoded neurons reach the output Node with
    ``synapse=None``, so ``output`` carries the raw decoded spikes
    (``decoders * spikes``, spikes of height 1/dt) and the user's outgoing
    connection sets all the filtering.

    Parameters
    ----------
    fit : PopulationFit
        The fitted population.
    label : str, optional
        Network label (default ``"PopulationNeuron(<target>)"``).
    spiking : bool
        True: the fit's spiking twin (`nengo.LIF`, `nengo.SpikingRectifiedLinear`);
        False: its rate twin (`nengo.LIFRate`, `nengo.RectifiedLinear`), which
        reproduces ``fit.predict`` exactly. Only True or False: a string such
        as ``"False"`` is refused.
    **kwargs
        Passed to `nengo.Network`: ``seed`` (None or an int in [0, 2**32 - 1])
        and ``add_to_container`` (None, True or False).

    Attributes
    ----------
    fit : PopulationFit
    spiking : bool
    ensemble : nengo.Ensemble
        ``fit.n_neurons`` neurons, 1 dimension, with the fitted bias and
        encoders, ``radius = max |fit.domain|`` and ``gain = fit.gain * radius``
        (nengo divides the input by the radius, so each neuron's current is
        exactly ``fit.gain * encoder * x + fit.bias``).
    input : nengo.Node
        Size 1: the unit's input ``x``.
    output : nengo.Node
        Size 1: ``sum_i decoders_i * activity_i`` (activity in Hz for rate
        neurons, spikes of height 1/dt for spiking ones).

    Notes
    -----
    The network builds unmodified on ``nengo_loihi.Simulator`` (see
    docs/loihi.md): the radius keeps the value nengo-loihi encodes on the host
    inside [-1, 1], and the decoded output is computed on the host.

    The ensemble's ``max_rates`` and ``intercepts`` that nengo reports
    (``sim.data[pop.ensemble]``) are nengo's reading of the gain and bias at
    the encoded input ``x = radius`` and are not the fit's tuning. For a neuron that
    reaches threshold only just beyond ``x = 1`` (possible on domains wider
    than ``[-1, 1]``), building the network in ``nengo.Simulator`` can emit
    the harmless warnings described in `PopulationLayer`.
    """

    @public("PopulationNeuron")
    def __init__(self, fit, label=None, spiking=True, **kwargs):
        self.fit = check_fit(fit)
        self.spiking = check_bool(spiking, "spiking")
        kwargs = _network_kwargs(label, kwargs)
        neuron_type = export_neuron_type(fit, self.spiking)
        if label is None:
            label = f"PopulationNeuron({fit.target.name})"
        super().__init__(label=label, **kwargs)
        with self:
            self.input = nengo.Node(size_in=1, label="input")
            # radius = max |domain|, gain multiplied back: nengo divides the input by
            # the radius (exact), and nengo-loihi's host-to-chip encoders, which
            # cover [-1, 1], then see only values inside [-1, 1]
            radius = float(np.max(np.abs(fit.domain)))
            self.ensemble = nengo.Ensemble(
                fit.n_neurons, 1, neuron_type=neuron_type, gain=fit.gain * radius,
                bias=fit.bias.copy(), encoders=fit.encoders[:, None].copy(),
                radius=radius, label="ensemble",
            )
            self.output = nengo.Node(size_in=1, label="output")
            nengo.Connection(self.input, self.ensemble, synapse=None)
            nengo.Connection(self.ensemble.neurons, self.output,
                             transform=fit.decoders[None, :].copy(), synapse=None)


class PopulationLayer(nengo.Network):
    """``n_units`` signed units in one Ensemble, wired with block-sparse transforms.

    Unit ``u`` owns neurons ``u*N .. u*N + N - 1`` (``N = fit.n_neurons``) and
    computes ``fit.predict(x_u + input_bias_u)``. Input and output go through
    `nengo.transforms.Sparse` connections with one nonzero per neuron, so the
    layer costs O(n_units * N) per step; a small layer's output (at most
    `DENSE_MAX_ENTRIES` entries, 32 units of 4 neurons) is
    `nengo.transforms.Dense`, which nengo runs faster at that size.
    `connect_to` wires the neurons straight into a following layer or object
    with the decoders folded into the weights, with no signed intermediate
    Node.

    As in `PopulationNeuron`, the input and output connections add no synapse
    (``synapse=None``).

    Parameters
    ----------
    fit : PopulationFit
        The fitted population used for every unit.
    n_units : int
        Number of signed units (>= 1), with ``n_units * fit.n_neurons`` at most
        `MAX_LAYER_NEURONS`.
    label : str, optional
        Network label (default ``"PopulationLayer(<target>, <n_units>)"``).
    spiking : bool
        Spiking twin (True) or rate twin (False) of the fit's neuron type
        (only True or False: a string such as ``"False"`` is refused).
    input_bias : array_like, shape (n_units,), optional
        Added to each unit's input before the activation; folded into the
        neurons' bias currents (``bias_n + gain_n * encoder_n * b_u``).
    hardware : None or "loihi"
        None (default): block-sparse transforms everywhere, the fastest
        network in nengo's reference simulator. ``"loihi"``: the network also
        builds on ``nengo_loihi.Simulator``: the connections that cross
        between host and chip (``input`` to the neurons, the neurons to
        ``output`` or to any Node in `connect_to`) use Dense transforms, and
        ``input`` is sent to the chip divided by `input_scale` (and multiplied
        back on chip), inside nengo-loihi's [-1, 1] encoding range. Neuron to
        neuron connections stay Sparse (nengo-loihi runs them on chip). Dense
        transforms cost O(n_units**2 * N) per step in nengo (a 1,000-unit layer
        runs 30-40x slower than the Sparse one), hence not the default.
    **kwargs
        Passed to `nengo.Network`: ``seed`` (None or an int in [0, 2**32 - 1])
        and ``add_to_container`` (None, True or False).

    Attributes
    ----------
    fit : PopulationFit
    n_units : int
    n_neurons : int
        Total neurons, ``n_units * fit.n_neurons``.
    spiking : bool
    input_bias : ndarray, shape (n_units,)
    ensemble : nengo.Ensemble
        All ``n_neurons`` neurons. Its single decoded dimension is a
        placeholder (a decoded ``n_units``-d ensemble would add a dense
        encoder product every step), with a single evaluation point: drive
        the layer through `input` or `connect_to`, read ``ensemble.neurons``,
        and do not decode from the ensemble itself.
    hardware : None or "loihi"
    input : nengo.Node
        Size ``n_units``. Made (with its connection to the neurons) the first
        time it is used.
    output : nengo.Node
        Size ``n_units``: each unit's decoded activity. Made the first time it
        is used: a layer read only through `connect_to` has no idle Node.

    Notes
    -----
    The Ensemble gets explicit ``gain`` and ``bias``, from which the nengo
    builder derives informational ``max_rates`` and ``intercepts`` at the
    encoded input ``x = 1`` (``sim.data[layer.ensemble]``; they are not the
    fit's tuning and are not used in the simulation). An LIF neuron whose
    threshold lies just beyond ``x = 1`` (``0 < gain + bias <= 1``: a wide
    domain, or an ``input_bias`` that shifts the unit's threshold) gets a NaN
    ``max_rates`` entry, and building the network in ``nengo.Simulator``
    emits, from ``nengo/neurons.py``::

        RuntimeWarning: invalid value encountered in log1p
        UserWarning: Non-finite values detected in `max_rates`; this probably
        means that `gain` was too small.

    They are raised at simulator build time (so popfit cannot filter them in
    your own simulators) and are harmless: the simulated neurons are exactly
    the fitted ones. popfit silences them in the simulators it builds itself
    (`popfit.ConvertedModel` predictions, `popfit.evaluate_spiking`). To silence
    exactly these warnings in yours, build the simulator inside
    `popfit.network.ignore_max_rates_warnings`::

        from popfit.network import ignore_max_rates_warnings

        with ignore_max_rates_warnings():
            sim = nengo.Simulator(model)
    """

    @public("PopulationLayer")
    def __init__(self, fit, n_units, label=None, spiking=True, input_bias=None,
                 hardware=None, **kwargs):
        self.fit = check_fit(fit)
        self.n_units = check_int(n_units, "n_units", low=1)
        if self.n_units * fit.n_neurons > MAX_LAYER_NEURONS:
            raise PopfitValueError(
                f"n_units * fit.n_neurons must be at most MAX_LAYER_NEURONS = "
                f"{MAX_LAYER_NEURONS:,} neurons (got {self.n_units:,} units x "
                f"{fit.n_neurons} neurons = {self.n_units * fit.n_neurons:,}): memory and "
                "time per step grow with the neurons, and a larger layer exhausts memory "
                "while it is built; use fewer units or a fit with fewer neurons")
        self.spiking = check_bool(spiking, "spiking")
        self.hardware = check_hardware(hardware)
        kwargs = _network_kwargs(label, kwargs)
        neuron_type = export_neuron_type(fit, self.spiking)
        n = fit.n_neurons
        if input_bias is None:
            input_bias = np.zeros(self.n_units)
        input_bias = check_finite_array(input_bias, "input_bias", shape=(self.n_units,),
                                      shape_name="(n_units,)")
        self.input_bias = input_bias
        gain = np.tile(fit.gain, self.n_units)
        encoders = np.tile(fit.encoders, self.n_units)
        with np.errstate(over="ignore", invalid="ignore"):
            bias = np.tile(fit.bias, self.n_units) + gain * encoders * np.repeat(input_bias, n)
        if not np.all(np.isfinite(bias)):
            limit = np.finfo(float).max / (2.0 * float(np.max(fit.gain)))
            raise PopfitValueError(
                f"input_bias folded into the bias currents (bias + gain * encoder * "
                f"input_bias) overflows: |input_bias| must be below about {limit:.3g} for "
                f"this fit's largest gain {float(np.max(fit.gain)):g} (got "
                f"{float(np.max(np.abs(input_bias))):g}); rescale the input")
        if label is None:
            label = f"PopulationLayer({fit.target.name}, {self.n_units})"
        super().__init__(label=label, **kwargs)
        self._input = self._output = None
        with self:
            self.ensemble = nengo.Ensemble(
                self.n_neurons, 1, neuron_type=neuron_type, gain=gain, bias=bias,
                encoders=encoders[:, None], eval_points=np.zeros((1, 1)),
                label="ensemble",
            )  # one eval point: the decoded dimension is unused, sampling is wasted build time

    # `input` and `output` are made on first use, so a layer driven or read only
    # through `connect_to` has no idle Node: no per-step work in nengo, and no
    # encoding neurons or probes in nengo-loihi
    @property
    def input(self):
        """`nengo.Node` of size ``n_units``: the units' inputs (made on first use)."""
        if self._input is None:
            with self:
                self._input = nengo.Node(size_in=self.n_units, label="input")
                if self.hardware == "loihi":
                    # nengo-loihi encodes host values with on/off neurons covering
                    # [-1, 1]: send x / scale, multiply the scale back on chip (Dense:
                    # host-to-chip connections take no Sparse transform)
                    scale = self.input_scale
                    scaled = nengo.Node(size_in=self.n_units, label="input (scaled)")
                    nengo.Connection(self._input, scaled, transform=1.0 / scale,
                                     synapse=None)
                    block = self.encoders_block().toarray() * scale[None, :]
                    nengo.Connection(scaled, self.ensemble.neurons, synapse=None,
                                     transform=nengo.transforms.Dense(block.shape, init=block))
                else:
                    nengo.Connection(self._input, self.ensemble.neurons, synapse=None,
                                     transform=_sparse(self.encoders_block()))
        return self._input

    @property
    def output(self):
        """`nengo.Node` of size ``n_units``: each unit's decoded activity (made on first use)."""
        if self._output is None:
            with self:
                self._output = nengo.Node(size_in=self.n_units, label="output")
                nengo.Connection(self.ensemble.neurons, self._output, synapse=None,
                                 transform=self._transform(self.decoders_block(),
                                                           self._output))
        return self._output

    @property
    def input_scale(self):
        """Per-unit input scale (``hardware="loihi"``), shape ``(n_units,)``.

        ``max |fit.domain| + |input_bias_u|``: the largest input ``x_u`` whose
        ``x_u + input_bias_u`` lies in the domain. The value nengo-loihi encodes
        on the host is ``x_u / input_scale_u``, inside [-1, 1].
        """
        return float(np.max(np.abs(self.fit.domain))) + np.abs(self.input_bias)

    def _transform(self, weights, post):
        """Sparse (fast in nengo), except Dense for an array, and into a Node when
        it has at most `DENSE_MAX_ENTRIES` entries or ``hardware="loihi"``
        (off chip: nengo-loihi takes only Dense transforms from chip to host).
        Neuron to neuron weights stay Sparse, so spikes are unchanged."""
        host = isinstance(post, nengo.Node) or (
            isinstance(post, nengo.base.ObjView) and isinstance(post.obj, nengo.Node))
        small = weights.shape[0] * weights.shape[1] <= DENSE_MAX_ENTRIES
        if scipy.sparse.issparse(weights) and not (host and (self.hardware == "loihi" or small)):
            return _sparse(weights)
        weights = weights.toarray() if scipy.sparse.issparse(weights) else np.asarray(weights)
        return nengo.transforms.Dense(weights.shape, init=weights)

    @property
    def n_neurons(self):
        """Total number of neurons, ``n_units * fit.n_neurons``."""
        return self.n_units * self.fit.n_neurons

    def encoders_block(self):
        """Encoder signs as a sparse matrix, shape ``(n_neurons, n_units)``.

        Row ``u*N + i`` has ``fit.encoders[i]`` in column ``u``. The gain is not
        included: nengo applies it to every connection into ``ensemble.neurons``.
        """
        n = self.fit.n_neurons
        rows = np.arange(self.n_neurons)
        cols = np.repeat(np.arange(self.n_units), n)
        vals = np.tile(self.fit.encoders, self.n_units)
        return scipy.sparse.csr_matrix((vals, (rows, cols)),
                                       shape=(self.n_neurons, self.n_units))

    def decoders_block(self):
        """Decoders as a sparse matrix, shape ``(n_units, n_neurons)``.

        Row ``u`` has ``fit.decoders`` in columns ``u*N .. u*N + N - 1``
        (units of the target per Hz, or per spike/dt when spiking).
        """
        n = self.fit.n_neurons
        rows = np.repeat(np.arange(self.n_units), n)
        cols = np.arange(self.n_neurons)
        vals = np.tile(self.fit.decoders, self.n_units)
        return scipy.sparse.csr_matrix((vals, (rows, cols)),
                                       shape=(self.n_units, self.n_neurons))

    @public("PopulationLayer.connect_to")
    def connect_to(self, post, transform=None, synapse=0.005, *, weights=None):
        """Connect this layer's neurons to ``post`` with the decoders folded in.

        Parameters
        ----------
        post : PopulationLayer, nengo.Node, nengo.Ensemble, ensemble.neurons or a slice
            A following layer (neuron-to-neuron weights
            ``post.encoders_block() @ transform @ self.decoders_block()``; nengo
            applies the post gain), or any object with ``size_in == k`` (decoded
            weights ``transform @ self.decoders_block()``).
        transform : array_like, scipy sparse matrix, nengo.Dense or nengo.Sparse, optional
            Linear map, shape ``(k, n_units)``, between this layer's unit
            outputs and ``post``'s ``k`` inputs (``k = post.n_units`` for a
            layer); finite real values. Default: identity, which needs
            ``k == n_units``. The weights are block-sparse
            (`nengo.transforms.Sparse`) for the identity, a scipy sparse matrix
            or a `nengo.transforms.Sparse`, and dense
            (`nengo.transforms.Dense`) for an array or a `nengo.transforms.Dense`
            (which take nengo's meaning: a scalar or 1-D ``init`` is a
            diagonal). A nengo transform must hold numbers, not a
            `nengo.dists.Distribution` (the weights are folded now, not at
            build time); other nengo transforms (``Convolution``) are refused.
        synapse : float or None
            Lowpass time constant (s) of the connection, > 0, or None.
        weights : array_like or scipy sparse matrix, shape (k, n_neurons), optional
            Finite real neuron-level weights from each of this layer's neurons to ``post``'s
            ``k`` inputs, used as given instead of ``transform @
            self.decoders_block()`` (e.g. the weights `popfit.convert` re-solves
            for the actual populations, ``refit=True``); not together with
            ``transform``. A following layer still gets ``post.encoders_block()
            @ weights``. The connection is then dense (`nengo.transforms.Dense`).

        Returns
        -------
        nengo.Connection
            Created in the current ``with network:`` context (as any
            `nengo.Connection`), which must contain both this layer and ``post``.
        """
        synapse = check_synapse(synapse, "synapse")
        if isinstance(post, PopulationLayer):
            k, target = post.n_units, post.ensemble.neurons
        elif isinstance(post, (nengo.Node, nengo.Ensemble, nengo.base.ObjView,
                               nengo.ensemble.Neurons)):
            k, target = post.size_in, post
        else:
            raise PopfitTypeError(
                f"post must be a PopulationLayer, nengo.Node, nengo.Ensemble, "
                f"ensemble.neurons or a slice of one (got {post!r} of type "
                f"{type(post).__name__})"
            )
        if weights is not None:
            if transform is not None:
                raise PopfitValueError(
                    "pass either transform (unit level, decoders folded in) or weights "
                    "(neuron level, used as given), not both")
            if scipy.sparse.issparse(weights):
                weights = weights.toarray()  # the connection is dense anyway
            weights = check_real_array(weights, "weights")
            if weights.shape != (k, self.n_neurons) or not np.all(np.isfinite(weights)):
                raise PopfitValueError(
                    f"weights must be a finite array of shape ({k}, {self.n_neurons}) "
                    f"(post size, this layer's n_neurons) (got shape {weights.shape}"
                    f"{' with non-finite values' if weights.shape == (k, self.n_neurons) else ''})")
        elif transform is None:
            if k != self.n_units:
                raise PopfitValueError(
                    f"without a transform post must have size {self.n_units} "
                    f"(this layer's n_units) (got size {k}); pass transform of shape "
                    f"({k}, {self.n_units})"
                )
            t = scipy.sparse.identity(self.n_units, format="csr")
        else:
            t = _transform_matrix(transform)
            if t.shape != (k, self.n_units):
                raise PopfitValueError(
                    f"transform must have shape ({k}, {self.n_units}) "
                    f"(post size, n_units) (got shape {t.shape})"
                )
        if weights is None:
            weights = t @ self.decoders_block()
        if isinstance(post, PopulationLayer):
            weights = post.encoders_block() @ weights
        values = weights.data if scipy.sparse.issparse(weights) else weights
        if not np.all(np.isfinite(values)):
            raise PopfitValueError(
                "transform times the decoders overflows to inf (largest |transform| "
                f"entry {_largest(t):g}, largest |decoder| {np.max(np.abs(self.fit.decoders)):g}); "
                "scale the transform down"
            )
        transform = self._transform(weights, target)
        # added to the current network context, like any nengo.Connection: the
        # builder needs it in a network that contains both ends
        return nengo.Connection(self.ensemble.neurons, target, transform=transform,
                                synapse=synapse)


def _largest(matrix):
    values = matrix.data if scipy.sparse.issparse(matrix) else matrix
    return float(np.max(np.abs(values))) if values.size else 0.0


def _transform_matrix(transform, name="transform"):
    """A `connect_to` transform as a finite float ndarray or scipy CSR matrix.

    Accepts an array, a scipy sparse matrix, `nengo.transforms.Dense` and
    `nengo.transforms.Sparse` (with nengo's meaning of their ``init``).
    ``name`` is the argument's name in error messages (`popfit.to_nir` checks
    its ``transforms[k]`` here too).
    """
    if isinstance(transform, nengo.transforms.Dense):
        init = transform.init
        if isinstance(init, nengo.dists.Distribution):
            raise PopfitTypeError(
                f"{name} nengo.Dense holds a Distribution ({init!r}), sampled only at "
                "build time; the transform is folded into the weights now: "
                "sample it yourself and pass nengo.Dense(shape, init=array) or the array"
            )
        init = check_finite_array(init, f"{name} (nengo.Dense init)")
        if init.ndim < 2:  # nengo: a scalar or a vector is a diagonal
            t = np.zeros(transform.shape)
            np.fill_diagonal(t, init)
        else:
            t = init
    elif isinstance(transform, nengo.transforms.Sparse):
        init = transform.init
        if isinstance(init, nengo.transforms.SparseMatrix):
            if isinstance(init.data, nengo.dists.Distribution):
                raise PopfitTypeError(
                    f"{name} nengo.Sparse holds a Distribution ({init.data!r}), sampled "
                    "only at build time; the transform is folded into the weights "
                    "now: pass numeric data or a scipy sparse matrix"
                )
            init = init.allocate()
        t = _real_sparse(init, f"{name} (nengo.Sparse init)")
    elif isinstance(transform, nengo.transforms.Transform):
        raise PopfitTypeError(
            f"{name} must be an array, a scipy sparse matrix, nengo.Dense or "
            f"nengo.Sparse (got {type(transform).__name__}); only a linear map can be "
            "folded into the neuron-to-neuron weights"
        )
    elif scipy.sparse.issparse(transform):
        t = _real_sparse(transform, name)
    else:
        t = check_finite_array(transform, name)
    return t


def _real_sparse(matrix, name):
    """A scipy sparse matrix of finite real numbers as a float CSR matrix (stays sparse)."""
    matrix = scipy.sparse.csr_matrix(matrix)
    check_finite_array(matrix.data, f"{name} (sparse data)")
    return matrix.astype(float)


#: Largest decoding transform (rows x columns) from a layer's neurons to a Node
#: (its ``output``, or a Node in `connect_to`) carried as
#: `nengo.transforms.Dense`: at this size nengo's reference simulator runs a
#: dense product faster than its Sparse operator (measured, a tanh layer of 4
#: LIF per unit: 0.91-0.93x the Sparse layer's run time at 16 and 32 units,
#: 0.97-1.05x at 64, 1.03x at 96, 1.14x at 128; benchmarks/bench_layer.py
#: prints it). Values are the same up to the order in which a unit's N
#: decoded terms are summed (a dense row adds only exact zeros; differences
#: of 1 ulp measured, tests/test_network.py). Inputs into neurons stay
#: Sparse, which nengo-loihi refuses loudly for a layer not built with
#: ``hardware="loihi"``.
DENSE_MAX_ENTRIES = 32 * 128


def _sparse(matrix):
    """A `nengo.transforms.Sparse` holding a scipy sparse matrix."""
    matrix = scipy.sparse.csr_matrix(matrix)
    matrix.eliminate_zeros()
    return nengo.transforms.Sparse(matrix.shape, init=matrix)
