"""Batched prediction: many samples simulated side by side in one simulator.

`ConvertedModel.predict` (and ``predict_proba``, ``decoded_output``,
``score``) present samples in chunks: for a chunk of ``B`` samples one
network is built holding ``B`` copies of the converted model, as
`popfit.PopulationLayer` holds its units: one Ensemble per hidden layer of
``B * n_units * N`` neurons, and block-diagonal `nengo.transforms.Sparse`
weights between layers: the weights ``ConvertedModel.network`` holds
(`ConvertedModel.neuron_weights` with ``per_neuron=True``; rounded, as the
network's, when the model was converted with ``weight_bits``). Every copy
runs for ``presentation_time`` from the same initial neuron state, so a
sample's prediction depends only on the sample and the seed:

- Each copy's first-layer input ``x @ W + b`` is constant over the
  presentation (the input connection has no synapse); it is computed once
  per sample in numpy and added to the neurons' bias currents, instead of
  being multiplied by nengo at every time step.
- The initial state of the neurons (LIF voltages) is drawn once from the
  seed for one copy (``neuron_type.make_state``, as nengo draws it) and
  repeated in every copy; the synapses start at zero.
- The last hidden layer's spikes go to a Node that accumulates, for each
  neuron, the mean over the last half of the presentation of its activity
  filtered by the ``connection_synapse`` lowpass (closed-form weights per time step,
  equal to averaging a filtered probe; no probed data is stored); the means
  are decoded in numpy with the model's output weights (the same linear map
  the network's output connection applies).

Sparse products are computed row by row, and every other step is
elementwise, so a sample's arithmetic is the same in any chunk: predictions
are identical for any ``batch_size`` and ``n_jobs`` (tested). They differ
from the sequential reference (`popfit.conversion.present` on
`ConvertedModel.network`, ``sequential=True``), which presents the samples
one after another without resetting the network, so each sample starts from
the state the previous one left (its neurons' voltages and synapses), and
rounds the first layer's input product differently; both are the same
network and agree statistically (benchmarks/bench_convert.py).

Chunks are sized to a memory budget and can run in parallel processes
(``n_jobs``, through joblib; its backends, such as Dask or Ray, carry this to a
cluster). ``simulator`` takes any nengo backend's ``Simulator`` class.
"""

import math

import numpy as np
import scipy.sparse

from ..exceptions import PopfitTypeError, PopfitValueError
from ..network import export_neuron_type
from ..neurons import ignore_max_rates_warnings
from .spec import dot

#: Memory budget (bytes) of one chunk's probed data and neuron state.
CHUNK_BYTES = 256 * 2**20
#: Approximate bytes per neuron of a built simulator (signals and operators).
BYTES_PER_NEURON = 400


def with_initial_state(neuron_type, n_neurons, copies, rng):
    """A copy of ``neuron_type`` whose initial state, drawn for ``n_neurons``, repeats.

    The copy is made as pickle makes one (nengo's ``FrozenObject.__getstate__``
    and ``__setstate__``) with only ``initial_state`` replaced, so it works
    for any nengo neuron type, whatever its constructor takes (nengo-loihi's
    types take ``**kwargs``, and a subclass may store its arguments under
    other names).
    """
    state = neuron_type.make_state(n_neurons, rng=rng)
    if not state:
        return neuron_type
    params = neuron_type.__getstate__()
    params.pop("_FrozenObject__argreprs", None)  # the cached repr, without initial_state
    params["initial_state"] = {name: np.tile(value, copies) for name, value in state.items()}
    copy = type(neuron_type).__new__(type(neuron_type))
    copy.__setstate__(params)
    return copy


def make_simulator(simulator, network, **kwargs):
    """``simulator(network, **kwargs)``, checked to be a simulator (context manager
    with ``run_steps``) (the max_rates build warnings silenced)."""
    with ignore_max_rates_warnings():
        sim = simulator(network, **kwargs)
    if not all(hasattr(sim, name) for name in ("run_steps", "__enter__", "__exit__")):
        raise PopfitTypeError(
            f"simulator must return a simulator (a context manager with run_steps, as "
            f"nengo.Simulator) when called as simulator(network, dt=..., seed=..., "
            f"progress_bar=...) (simulator {simulator!r} returned {sim!r:.80} of type "
            f"{type(sim).__name__}); pass a nengo backend's Simulator class")
    return sim


def connection_matrix(conn):
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


def network_links(model):
    """The connections from hidden layers' neurons in ``model.network``, as it holds them.

    Returns a dict ``(source, target) -> matrix``: ``source`` a hidden layer,
    ``target`` a hidden layer (its per-neuron transform, shape ``(n_neurons_target,
    n_neurons_source)``; nengo multiplies it by the receiving neurons' gains) or
    ``len(spec.hidden)``, the output (the decoding transform, ``(n_outputs,
    n_neurons_source)``). Matrices as `popfit.conversion.present.connection_matrix`.
    """
    net = model.network
    index = {layer.ensemble.neurons: i for i, layer in enumerate(net.layers)}
    links = {}
    for conn in net.all_connections:
        source = index.get(conn.pre_obj)
        if source is None:
            continue
        target = (len(net.layers) if conn.post_obj is net.output
                  else index.get(conn.post_obj))
        if target is None or (source, target) in links:
            raise PopfitValueError(
                f"hidden layer {source} of the network has a connection to "
                f"{conn.post_obj!r} that convert did not make: the network was changed "
                "after convert")
        links[source, target] = connection_matrix(conn)
    return links


def input_gains(model, i):
    """Current per unit input of each of hidden layer ``i``'s neurons from the host.

    Neuron ``n`` of unit ``u`` receives ``c[n] * (x @ W)[u]`` from the
    model input (``W``: the source model's matrix from the input to the
    layer; the layer's bias is in the neurons' bias currents): ``c =
    gain * encoders``, or its rounding with ``weight_bits`` (the
    connection into the neurons is on chip). Read from `network`.

    Returns
    -------
    ndarray, shape (n_neurons_i,)
    """
    layer = model.network.layers[i]
    layers = {other.ensemble for other in model.network.layers}
    conns = [c for c in model.network.all_connections
             if getattr(c.post_obj, "ensemble", None) is layer.ensemble
             and getattr(c.pre_obj, "ensemble", None) not in layers]
    if len(conns) != 1:
        raise PopfitValueError(
            f"hidden layer {i} of the network has {len(conns)} connections from the "
            "host into its neurons (expected 1): the network was changed after convert")
    conn = conns[0]
    t = connection_matrix(conn)
    t = t.toarray() if scipy.sparse.issparse(t) else np.asarray(t)
    n = layer.fit.n_neurons
    unit = np.repeat(np.arange(layer.n_units), n)
    c = np.asarray(layer.ensemble.gain, dtype=float) * t[np.arange(len(unit)), unit]
    if conn.pre_obj is not layer.input:  # Dense host transforms: fed x / input_scale
        c = c / layer.input_scale[unit]
    return c


def unit_biases(model):
    """The input bias of every layer's units (hidden layers, then the output)."""
    spec = model.spec
    if model.weights is not None:  # re-solved: the biases into layers 1.. and the output
        return [spec.layers[0].bias] + list(model.biases)
    return [layer.bias for layer in spec.layers]


class BatchPlan:
    """Everything a worker needs to simulate chunks of samples (picklable, no nengo objects).

    Parameters
    ----------
    model : ConvertedModel
    steps : int
        Time steps per presentation.
    dt : float
    seed : int
    simulator : callable
        ``simulator(network, dt=..., seed=..., progress_bar=...)``.
    """

    def __init__(self, model, steps, dt, seed, simulator):
        self.spec = model.spec
        self.fits = model.fits
        self.neuron_types = [export_neuron_type(fit, True) for fit in model.fits]
        # the weights the network runs (rounded with weight_bits): neuron to neuron
        # between hidden layers, then the unit-level output weights
        self.links = network_links(model)
        self.biases = unit_biases(model)
        # inputs: (target layer, unit-level matrix) of every input connection
        self.inputs = [(j, m) for j, layer in enumerate(self.spec.layers)
                       for s, m in layer.inputs(j) if s == -1]
        # layers fed by the input: the current per unit input of each neuron, where
        # weight_bits rounded it (none: gain * encoders, folded with the input bias below)
        self.input_gains = {} if model.weight_bits is None else {
            j: input_gains(model, j) for j, _ in self.inputs if j < len(model.fits)}
        self.connection_synapse = model.connection_synapse
        self.steps, self.dt, self.seed = steps, dt, seed
        self.simulator = simulator
        self.platform = model.platform

    @property
    def n_hidden(self):
        return len(self.fits)

    @property
    def bytes_per_sample(self):
        neurons = sum(layer.n_out * fit.n_neurons for layer, fit in
                      zip(self.spec.hidden, self.fits))
        nnz = sum(w.nnz if scipy.sparse.issparse(w) else w.size
                  for (_, t), w in self.links.items() if t < self.n_hidden)
        read = sum(w.shape[1] for (_, t), w in self.links.items() if t == self.n_hidden)
        return 8 * read + BYTES_PER_NEURON * neurons + 12 * nnz  # + the read-out sums

    def input_drive(self, X):
        """Each sample's input into every layer it reaches, ``{layer: (n, units)}``, one
        sample at a time (so the rounding does not depend on how many samples there are)."""
        return {j: np.stack([dot(x[None, :], m)[0] for x in X]) for j, m in self.inputs}

    def build(self, drive, copies):
        """The network of ``copies`` copies; returns (network, read-outs by layer)."""
        import nengo

        rng = np.random.RandomState(self.seed)
        with nengo.Network(label=f"popfit batch of {copies}", seed=self.seed) as net:
            ensembles = []
            for i, (fit, nt) in enumerate(zip(self.fits, self.neuron_types)):
                n = fit.n_neurons
                units = self.spec.hidden[i].n_out
                z = np.tile(self.biases[i], (copies, 1))
                gain = np.tile(fit.gain, copies * units)
                enc = np.tile(fit.encoders, copies * units)
                bias = np.tile(fit.bias, copies * units) + gain * enc * np.repeat(z.ravel(), n)
                if i in drive and i in self.input_gains:  # rounded weights
                    bias = bias + np.tile(self.input_gains[i], copies) * np.repeat(
                        drive[i].ravel(), n)
                elif i in drive:
                    bias = bias + gain * enc * np.repeat(drive[i].ravel(), n)
                ensembles.append(nengo.Ensemble(
                    copies * units * n, 1, gain=gain, bias=bias, encoders=enc[:, None],
                    eval_points=np.zeros((1, 1)), label=f"hidden {i}",
                    neuron_type=with_initial_state(nt, units * n, copies, rng)))
            readouts = {}
            for (i, j), w in sorted(self.links.items()):
                if j == self.n_hidden:
                    # the read-out: the mean over the last half of the presentation of
                    # each neuron's Lowpass-filtered spikes, accumulated as they arrive
                    readouts[i] = _FilteredMean(ensembles[i].n_neurons, self.steps, self.dt,
                                                self.connection_synapse)
                    nengo.Connection(ensembles[i].neurons,
                                     nengo.Node(readouts[i], size_in=ensembles[i].n_neurons,
                                                size_out=0, label=f"read-out {i}"),
                                     synapse=None)
                    continue
                block = scipy.sparse.csr_matrix(w)  # the network's transform
                full = scipy.sparse.block_diag([block] * copies, format="csr")
                nengo.Connection(ensembles[i].neurons, ensembles[j].neurons,
                                 transform=nengo.transforms.Sparse(full.shape, init=full),
                                 synapse=self.connection_synapse)
        if self.simulator is not nengo.Simulator:  # e.g. nengo-loihi's block shapes
            self.platform.prepare(net)
        return net, readouts

    def run(self, X, progress_bar=False):
        """Decoded outputs (before the output nonlinearity) of samples ``X``."""
        drive = self.input_drive(X)
        net, readouts = self.build(drive, len(X))
        sim = make_simulator(self.simulator, net, dt=self.dt, seed=self.seed,
                             progress_bar=progress_bar)
        with sim:
            sim.run_steps(self.steps)
        out = np.tile(self.biases[-1], (len(X), 1)) + drive.get(self.n_hidden, 0.0)
        for i, readout in readouts.items():
            mean = readout.mean().reshape(len(X), -1)
            # one sample at a time, so the rounding does not depend on the chunk
            w = self.links[i, self.n_hidden]
            out = out + np.stack([w @ m for m in mean])
        return out


class _FilteredMean:
    """Node function: the mean, over steps ``K // 2 + 1 .. K`` (the last half of a
    presentation of ``K`` steps), of its input filtered by ``Lowpass(synapse)``.

    It equals what a ``nengo.Probe(neurons, synapse=Lowpass(synapse))`` averaged
    over those steps gives: there ``y[k] = a y[k-1] + (1 - a) x[k-1]`` with
    ``a = exp(-dt / synapse)`` (zero-order hold; a probe's filter sees the
    spikes of the step before), so the sum of ``y[s..K]`` is
    ``sum_j w[j] x[j]`` with ``w[j] = (1 - a) sum_{k=max(j+1,s)}^{K} a**(k-j-1)``:
    one multiply-add per neuron and step, no filter state and no probed data
    (probing every neuron at every step cost more than half of a 450-digit
    batch, measured).
    """

    def __init__(self, size, steps, dt, synapse):
        a = float(np.exp(-dt / synapse))
        first = steps // 2 + 1
        j = np.arange(1, steps + 1)
        start = np.maximum(j + 1, first)
        terms = np.maximum(steps - start + 1, 0)  # k = start .. steps
        self.weights = a ** (start - j - 1) * (1.0 - a ** terms) / (steps - first + 1)
        self.total = np.zeros(size)
        self.dt = dt

    def __call__(self, t, x):
        self.total += self.weights[int(round(t / self.dt)) - 1] * x

    def mean(self):
        return self.total


def _run_chunk(plan, X, progress_bar):
    return plan.run(X, progress_bar)


def chunk_size(plan, n_samples, batch_size, n_jobs):
    """Samples per chunk: ``batch_size``, or what fits `CHUNK_BYTES`, spread over the jobs."""
    if batch_size is not None:
        return batch_size
    size = max(1, CHUNK_BYTES // plan.bytes_per_sample)
    return max(1, min(size, math.ceil(n_samples / n_jobs)))


def max_workers(n_jobs):
    """``n_jobs``, at most one per CPU (`joblib.cpu_count`) on joblib's local backends
    (processes, threads); a cluster backend (``joblib.parallel_config(backend="dask")``)
    keeps ``n_jobs``."""
    import joblib

    try:
        from joblib.parallel import get_active_backend

        backend = get_active_backend()[0]
        local = type(backend).__module__.startswith("joblib.")
    except (ImportError, AttributeError, TypeError):  # joblib's internals moved
        local = True
    return min(n_jobs, joblib.cpu_count()) if local else n_jobs


def predict_batched(plan, X, batch_size=None, n_jobs=1, progress_bar=False):
    """Decoded outputs of all samples, chunk by chunk (in ``n_jobs`` processes).

    At most one process per chunk, and per CPU on joblib's local backends
    (`max_workers`): more would only wait or share the CPUs.
    """
    n_jobs = max_workers(n_jobs)
    size = chunk_size(plan, len(X), batch_size, n_jobs)
    chunks = [X[i:i + size] for i in range(0, len(X), size)]
    n_jobs = min(n_jobs, len(chunks))
    if n_jobs == 1:
        out = [plan.run(c, progress_bar) for c in chunks]
    else:
        import joblib

        out = joblib.Parallel(n_jobs=n_jobs)(
            joblib.delayed(_run_chunk)(plan, c, False) for c in chunks)
    return np.concatenate(out, axis=0)
