"""`PopulationLayer`: many fitted units in one Ensemble, with block-structured transforms."""




import nengo
import numpy as np
import scipy.sparse

from .._validation import (
    check_bool,
    check_finite_array,
    check_int,
    check_real_array,
    check_synapse,
    public,
)
from ..exceptions import PopfitTypeError, PopfitValueError
from ..platforms import get_platform
from ..result import check_fit
from .neuron import export_neuron_type, network_kwargs
from .transforms import DENSE_MAX_ENTRIES, as_sparse, largest_entry, transform_matrix

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
    platform : str or popfit.platforms.Platform, optional
        Where the layer runs (`popfit.get_platform`; default ``"nengo"``).
        A platform whose ``host_transforms`` allow Sparse (``"nengo"``):
        block-sparse transforms everywhere, the fastest network in nengo's
        reference simulator. One that does not (``"loihi"``, or any platform
        without ``"Sparse"`` in ``host_transforms``): the connections that
        cross between host and neurons (``input`` to the neurons, the neurons
        to ``output`` or to any Node in `connect_to`) use Dense transforms,
        and ``input`` is sent to the neurons divided by `input_scale` (and
        multiplied back on the connection into them), inside nengo-loihi's
        [-1, 1] encoding range. Neuron to neuron connections stay Sparse
        (nengo-loihi runs them on chip). Dense transforms cost
        O(n_units**2 * N) per step in nengo (a 1,000-unit layer runs 30-40x
        slower than the Sparse one), hence not nengo's default. The layer
        runs the fit's neuron type whatever the platform (fit for it with
        ``popfit.fit_activation(..., platform=...)``).
    **kwargs
        Passed to `nengo.Network`: ``seed`` (None or an int in [0, 2**32 - 1])
        and ``add_to_container`` (None, True or False).

    Attributes
    ----------
    fit : PopulationFit
    n_units : int
    total_neurons : int
        All the layer's neurons, ``n_units * fit.n_neurons`` (``fit.n_neurons``
        is the population size per unit).
    spiking : bool
    input_bias : ndarray, shape (n_units,)
    ensemble : nengo.Ensemble
        All ``total_neurons`` neurons. Its single decoded dimension is a
        placeholder (a decoded ``n_units``-d ensemble would add a dense
        encoder product every step), with a single evaluation point: drive
        the layer through `input` or `connect_to`, read ``ensemble.neurons``,
        and do not decode from the ensemble itself.
    platform : popfit.platforms.Platform
        The resolved ``platform``.
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
    `popfit.neurons.ignore_max_rates_warnings`::

        from popfit.neurons import ignore_max_rates_warnings

        with ignore_max_rates_warnings():
            sim = nengo.Simulator(model)
    """

    @public
    def __init__(self, fit, n_units, label=None, spiking=True, input_bias=None,
                 platform=None, **kwargs):
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
        self.platform = get_platform(platform)
        kwargs = network_kwargs(label, kwargs)
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
                self.total_neurons, 1, neuron_type=neuron_type, gain=gain, bias=bias,
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
                if not self.platform.sparse_host_transforms:
                    # nengo-loihi encodes host values with on/off neurons covering
                    # [-1, 1]: send x / scale, multiply the scale back on chip (Dense:
                    # its host-to-chip connections take no Sparse transform)
                    scale = self.input_scale
                    scaled = nengo.Node(size_in=self.n_units, label="input (scaled)")
                    nengo.Connection(self._input, scaled, transform=1.0 / scale,
                                     synapse=None)
                    block = self.encoders_block().toarray() * scale[None, :]
                    nengo.Connection(scaled, self.ensemble.neurons, synapse=None,
                                     transform=nengo.transforms.Dense(block.shape, init=block))
                else:
                    nengo.Connection(self._input, self.ensemble.neurons, synapse=None,
                                     transform=as_sparse(self.encoders_block()))
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
        """Per-unit input scale (platforms without Sparse host transforms), shape ``(n_units,)``.

        ``max |fit.domain| + |input_bias_u|``: the largest input ``x_u`` whose
        ``x_u + input_bias_u`` lies in the domain. The value nengo-loihi encodes
        on the host is ``x_u / input_scale_u``, inside [-1, 1].
        """
        return float(np.max(np.abs(self.fit.domain))) + np.abs(self.input_bias)

    def _transform(self, weights, post):
        """Sparse (fast in nengo), except Dense for an array, and into a Node when
        it has at most `DENSE_MAX_ENTRIES` entries or the platform takes no
        Sparse host transforms (nengo-loihi takes only Dense from chip to host).
        Neuron to neuron weights stay Sparse, so spikes are unchanged."""
        host = isinstance(post, nengo.Node) or (
            isinstance(post, nengo.base.ObjView) and isinstance(post.obj, nengo.Node))
        small = weights.shape[0] * weights.shape[1] <= DENSE_MAX_ENTRIES
        if scipy.sparse.issparse(weights) and not (
                host and (not self.platform.sparse_host_transforms or small)):
            return as_sparse(weights)
        weights = weights.toarray() if scipy.sparse.issparse(weights) else np.asarray(weights)
        return nengo.transforms.Dense(weights.shape, init=weights)

    @property
    def total_neurons(self):
        """All the layer's neurons, ``n_units * fit.n_neurons``."""
        return self.n_units * self.fit.n_neurons

    def encoders_block(self):
        """Encoder signs as a sparse matrix, shape ``(total_neurons, n_units)``.

        Row ``u*N + i`` has ``fit.encoders[i]`` in column ``u``. The gain is not
        included: nengo applies it to every connection into ``ensemble.neurons``.
        """
        n = self.fit.n_neurons
        rows = np.arange(self.total_neurons)
        cols = np.repeat(np.arange(self.n_units), n)
        vals = np.tile(self.fit.encoders, self.n_units)
        return scipy.sparse.csr_matrix((vals, (rows, cols)),
                                       shape=(self.total_neurons, self.n_units))

    def decoders_block(self):
        """Decoders as a sparse matrix, shape ``(n_units, total_neurons)``.

        Row ``u`` has ``fit.decoders`` in columns ``u*N .. u*N + N - 1``
        (units of the target per Hz, or per spike/dt when spiking).
        """
        n = self.fit.n_neurons
        rows = np.repeat(np.arange(self.n_units), n)
        cols = np.arange(self.total_neurons)
        vals = np.tile(self.fit.decoders, self.n_units)
        return scipy.sparse.csr_matrix((vals, (rows, cols)),
                                       shape=(self.n_units, self.total_neurons))

    @public
    def connect_to(self, post, transform=None, connection_synapse=0.005, *, weights=None):
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
        connection_synapse : float or None
            Lowpass time constant (s) of the connection, > 0, or None (not
            the ``synapse`` a fit's noise model assumes, though they are
            usually the same).
        weights : array_like or scipy sparse matrix, shape (k, total_neurons), optional
            Finite real neuron-level weights from each of this layer's neurons to ``post``'s
            ``k`` inputs, used as given instead of ``transform @
            self.decoders_block()`` (e.g. the weights `popfit.convert` re-solves
            for the actual populations, ``refit=True``); not together with
            ``transform``. A following layer still gets ``post.encoders_block()
            @ weights``. The connection is dense (`nengo.transforms.Dense`) for
            an array, Sparse for a scipy sparse matrix (as ``transform``).

        Returns
        -------
        nengo.Connection
            Created in the current ``with network:`` context (as any
            `nengo.Connection`), which must contain both this layer and ``post``.
        """
        connection_synapse = check_synapse(connection_synapse, "connection_synapse")
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
            if scipy.sparse.issparse(weights):  # kept sparse: a Sparse transform
                weights = scipy.sparse.csr_matrix(weights, dtype=float)
                finite = np.all(np.isfinite(weights.data))
            else:
                weights = check_real_array(weights, "weights")
                finite = np.all(np.isfinite(weights))
            if weights.shape != (k, self.total_neurons) or not finite:
                raise PopfitValueError(
                    f"weights must be a finite array of shape ({k}, {self.total_neurons}) "
                    f"(post size, this layer's total_neurons) (got shape {weights.shape}"
                    + (" with non-finite values" if weights.shape == (k, self.total_neurons)
                       else "") + ")")
        elif transform is None:
            if k != self.n_units:
                raise PopfitValueError(
                    f"without a transform post must have size {self.n_units} "
                    f"(this layer's n_units) (got size {k}); pass transform of shape "
                    f"({k}, {self.n_units})"
                )
            t = scipy.sparse.identity(self.n_units, format="csr")
        else:
            t = transform_matrix(transform)
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
                f"entry {largest_entry(t):g}, largest |decoder| "
                f"{np.max(np.abs(self.fit.decoders)):g}); "
                "scale the transform down"
            )
        transform = self._transform(weights, target)
        # added to the current network context, like any nengo.Connection: the
        # builder needs it in a network that contains both ends
        return nengo.Connection(self.ensemble.neurons, target, transform=transform,
                                synapse=connection_synapse)


