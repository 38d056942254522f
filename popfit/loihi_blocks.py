"""nengo-loihi 1.1's blocks and per-core limits, modelled without nengo-loihi.

nengo-loihi builds every on-chip Ensemble as one block, splits a block that
exceeds a core into smaller ones (``nengo_loihi/builder/split_blocks.py``),
then refuses any block still over a core's limits (``builder/validate.py``):

- compartments (neurons): at most `MAX_COMPARTMENTS`;
- input axons: one per presynaptic neuron (or host encoding neuron) that
  reaches the block, at most `MAX_IN_AXONS`;
- output axons: for every connection leaving the block, one per neuron and
  per block of the target that the neuron reaches, at most `MAX_OUT_AXONS`
  (a target split into k blocks multiplies a source block's output axons
  by up to k);
- synapse memory: per input axon, its stored weights in groups of 64,
  ``ceil((8 n + 10) / 64)`` 64-bit words for a group of ``n``, at most
  `MAX_SYNAPSE_BITS`. A Dense transform stores every weight (zeros too), a
  Sparse one its nonzero weights; a split block stores identical rows once.

Unless an Ensemble has a ``nengo_loihi.BlockShape`` (``block_shape`` in the
config of the network that holds it), nengo-loihi splits it sequentially into
``max(ceil(resource / limit))`` equal blocks, counting every resource before
splitting. `Blocks.evaluate` repeats that, and what the split blocks then
hold, array by array; `Blocks.plan` searches the block sizes that fit.
Modelled: Neurons-to-Neurons connections on chip (Dense, Sparse, no
transform), host Nodes into neurons (on/off encoded, Dense or no transform)
or into an Ensemble (its node encoders). Not modelled (`Blocks.unmodelled`
names them): decoded connections between ensembles and decoded probes
(nengo-loihi adds decode-neuron blocks), convolution transforms
(population axons), learning rules, passthrough Nodes between ensembles on
chip (nengo-loihi removes them; here they count as host).
"""

import math

import nengo
import numpy as np
import scipy.sparse

from .graph import base_object

#: Compartments per Loihi core (nengo-loihi's ``MAX_COMPARTMENTS``).
MAX_COMPARTMENTS = 1024
#: Input axons per Loihi core (nengo-loihi's ``MAX_IN_AXONS``).
MAX_IN_AXONS = 4096
#: Output axons per Loihi core (nengo-loihi's ``MAX_OUT_AXONS``).
MAX_OUT_AXONS = 4096
#: Synapse memory per Loihi core in bits (nengo-loihi's ``MAX_SYNAPSE_BITS``).
MAX_SYNAPSE_BITS = 16384 * 64
#: (resource, limit), in the order nengo-loihi's ``validate_block`` checks them.
LIMITS = (("compartments", MAX_COMPARTMENTS), ("output axons", MAX_OUT_AXONS),
          ("input axons", MAX_IN_AXONS), ("synapse bits", MAX_SYNAPSE_BITS))
#: Rounds of `Blocks.plan` before it gives up.
MAX_PLAN_ROUNDS = 64
#: Block sizes dividing the ensemble `Blocks.plan` tries where smaller blocks do not help.
MAX_DIVISOR_TRIES = 8


def synapse_bits(n_weights):
    """Synapse memory (bits) of input axons holding ``n_weights`` weights each.

    nengo-loihi's ``SynapseConfig.bits_per_axon`` for its neuron weights
    (8-bit weights, no index bits, 64 synapses per group): each group of up
    to 64 weights takes ``8 n + 10`` bits rounded up to 64-bit words.
    """
    n = np.asarray(n_weights, dtype=np.int64)
    full, rest = np.divmod(n, 64)
    return full * 576 + np.where(rest > 0, -(-(rest * 8 + 10) // 64) * 64, 0)


def _on_chip(obj, on_chip):
    return isinstance(obj, nengo.Ensemble) and not isinstance(
        obj.neuron_type, nengo.Direct) and on_chip.get(obj) is not False


def _config_value(net, ens, name):
    """``net.config[ens].<name>`` if nengo-loihi's ``add_params`` added it, else None."""
    try:
        return getattr(net.config[ens], name)
    except AttributeError:
        return None


class Synapse:
    """The weights of one connection into an on-chip ensemble, as nengo-loihi stores them.

    ``weights`` has one row per input axon and one column per post neuron:
    an ndarray (Dense: every weight stored) or a csr matrix (Sparse: its
    stored entries), float32 as nengo-loihi holds them before discretizing.
    ``pre`` is the presynaptic Ensemble (None for the host) and ``axon_of``
    the input axon of each of its neurons (-1: none).
    """

    def __init__(self, label, weights, pre=None, axon_of=None):
        self.label, self.pre, self.axon_of = label, pre, axon_of
        if scipy.sparse.issparse(weights):
            weights = scipy.sparse.csr_matrix(weights, dtype=np.float64)
            weights.sum_duplicates()
            weights.eliminate_zeros()  # nengo-loihi scales by the gain: scipy drops zeros
            weights = scipy.sparse.csr_matrix(weights, dtype=np.float32)
            weights.sort_indices()
        else:
            weights = np.asarray(weights, dtype=np.float32)
        self.weights = weights
        self.n_axons = weights.shape[0]

    @property
    def dense(self):
        return not scipy.sparse.issparse(self.weights)

    def row_sizes(self):
        """Stored weights per input axon."""
        if self.dense:
            return np.full(self.n_axons, self.weights.shape[1])
        return np.diff(self.weights.indptr)

    def split(self, block_of, position, blocks):
        """Input axons, synapse bits (identical rows stored once) and how many blocks
        each axon reaches, once the post ensemble is split into ``blocks`` (index arrays).

        Returns ``(in_axons, bits, reaches)``: two arrays of one entry per block,
        and the number of blocks each input axon reaches, shape ``(n_axons,)``.
        """
        k = len(blocks)
        in_axons, bits = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
        if self.dense:
            for b, idx in enumerate(blocks):
                sub = np.ascontiguousarray(self.weights[:, idx])
                rows = sub.view(np.dtype((np.void, sub.dtype.itemsize * max(sub.shape[1], 1))))
                in_axons[b] = self.n_axons
                bits[b] = len(np.unique(rows)) * int(synapse_bits(len(idx)))
            return in_axons, bits, np.full(self.n_axons, k)
        coo = self.weights.tocoo()  # by row, then column
        blk = block_of[coo.col]
        group = coo.row.astype(np.int64) * k + blk
        order = np.argsort(group, kind="stable") if np.any(group[1:] < group[:-1]) else \
            slice(None)  # sequential blocks: already grouped by (row, block)
        rows, blk = coo.row[order], blk[order]
        # a row of a block is its (weight, position) pairs: hashed as a sum of mixed
        # 64-bit keys (nengo-loihi compares the arrays' bytes; two 64-bit hashes
        # collide with negligible probability)
        key = (coo.data[order].view(np.uint32).astype(np.uint64) << np.uint64(32)) | \
            position[coo.col[order]].astype(np.uint64)
        group = group[order]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        if len(starts) == 0:
            return in_axons, bits, np.zeros(self.n_axons, dtype=np.int64)
        groups = np.stack([blk[starts].astype(np.uint64),
                           np.diff(np.r_[starts, len(rows)]).astype(np.uint64),
                           np.add.reduceat(_mix(key), starts),
                           np.add.reduceat(_mix(key ^ np.uint64(0x9E3779B97F4A7C15)), starts)],
                          axis=1)
        in_axons += np.bincount(groups[:, 0].astype(np.int64), minlength=k)
        unique = np.unique(groups, axis=0)
        bits += np.bincount(unique[:, 0].astype(np.int64), minlength=k,
                            weights=synapse_bits(unique[:, 1])).astype(np.int64)
        reaches = np.bincount(rows[starts], minlength=self.n_axons)
        return in_axons, bits, reaches


def _mix(x):
    """splitmix64's finalizer on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Blocks:
    """The on-chip ensembles of a network, their synapses, and how they split into blocks.

    ``ensembles`` lists the on-chip Ensembles, ``labels`` names each,
    ``synapses[ens]`` the `Synapse` objects into it, ``outputs[ens]`` the
    synapses its neurons feed, ``shapes[ens]`` a ``(shape, ensemble_shape)``
    from nengo-loihi's ``block_shape`` config (or None), ``unmodelled`` what
    the model leaves out, ``host_inputs``/``host_outputs`` the values sent to
    and read from the chip.
    """

    def __init__(self, network, labels=None):
        labels = labels or {}
        nets = [network] + list(network.all_networks)
        parent = {ens: net for net in nets for ens in net.ensembles}
        on_chip = {ens: _config_value(net, ens, "on_chip") for ens, net in parent.items()}
        self.ensembles = [e for e in network.all_ensembles if _on_chip(e, on_chip)]
        chip = set(self.ensembles)
        self.parent = parent
        self.labels = {e: labels.get(id(e)) or e.label or str(e) for e in self.ensembles}
        self.shapes = {}
        for ens in self.ensembles:
            shape = _config_value(parent[ens], ens, "block_shape")
            self.shapes[ens] = None if shape is None else (
                tuple(shape.shape), tuple(shape.ensemble_shape))
        self.synapses = {e: [] for e in self.ensembles}
        self.outputs = {e: [] for e in self.ensembles}
        self.unmodelled, self.host_inputs, self.host_outputs = [], 0, 0
        encoded = set()  # ensembles whose node-encoder synapse exists (one per ensemble)
        for conn in network.all_connections:
            pre, post = base_object(conn.pre_obj), base_object(conn.post_obj)
            if pre in chip and post not in chip:
                self.host_outputs += conn.size_out  # a probe on the host: no axons
                if not isinstance(conn.pre_obj, nengo.ensemble.Neurons):
                    self.unmodelled.append(f"{conn}: decoded output (decode-neuron blocks)")
                continue
            if post not in chip:
                continue
            if conn.learning_rule_type is not None:
                self.unmodelled.append(f"{conn}: learning rule")
            to_neurons = isinstance(conn.post_obj, nengo.ensemble.Neurons)
            kind = type(conn.transform).__name__
            if pre not in chip:  # a host value, encoded by an on/off neuron pair
                self.host_inputs += conn.size_mid if to_neurons else conn.size_out
                if kind not in ("Dense", "NoTransform"):
                    continue  # refused outright: `popfit.loihi.build_problems`
                if not to_neurons:
                    if post not in encoded:
                        encoded.add(post)
                        self.synapses[post].append(Synapse(
                            f"{post} node encoders", _node_encoders(post)))
                    continue
                w = _matrix(conn, (post.n_neurons, conn.size_mid))
                w = scipy.sparse.hstack([w, -w]) if scipy.sparse.issparse(w) else np.hstack(
                    [w, -w])
                self.synapses[post].append(Synapse(str(conn), _scale(w.T, post.gain)))
                continue
            if not (isinstance(conn.pre_obj, nengo.ensemble.Neurons) and to_neurons):
                self.unmodelled.append(f"{conn}: decoded connection on chip (decode neurons)")
                continue
            if kind not in ("Dense", "NoTransform", "Sparse"):
                self.unmodelled.append(f"{conn}: {kind} transform (population axons)")
                continue
            axon_of = -np.ones(pre.n_neurons, dtype=np.int64)
            sliced = axon_of[conn.pre_slice]
            axon_of[conn.pre_slice] = np.arange(sliced.size)
            w = _matrix(conn, (post.n_neurons, sliced.size))
            syn = Synapse(str(conn), _scale(w.T, post.gain), pre, axon_of)
            self.synapses[post].append(syn)
            self.outputs[pre].append((syn, post))

    def default_split(self, ens):
        """Blocks nengo-loihi splits ``ens`` into without a block shape (before fitting)."""
        syns = self.synapses[ens]
        totals = (ens.n_neurons, len(self.outputs[ens]) * ens.n_neurons,
                  sum(s.n_axons for s in syns),
                  sum(int(synapse_bits(s.row_sizes()).sum()) for s in syns))
        return max(max(-(-t // limit) for t, (_, limit) in zip(totals, LIMITS)), 1)

    def block_indices(self, ens, size=None):
        """Compartment indices of each block of ``ens``: sequential blocks of ``size``,
        else its configured block shape, else nengo-loihi's default split."""
        n = ens.n_neurons
        if size is None and self.shapes[ens] is not None:
            shape, ens_shape = self.shapes[ens]
            full = np.arange(n).reshape(ens_shape)
            starts = np.stack(np.meshgrid(*[np.arange(0, m, s) for m, s in zip(
                ens_shape, shape)], indexing="ij"), axis=-1).reshape(-1, len(shape))
            return [full[tuple(slice(i, min(i + s, m)) for i, s, m in zip(
                start, shape, ens_shape))].ravel() for start in starts]
        if size is None:
            size = -(-n // self.default_split(ens))
        return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]

    def evaluate(self, sizes=None):
        """Each block's use of each resource.

        ``sizes`` maps an ensemble to a sequential block size (others: their
        configured shape or nengo-loihi's default). Returns ``{ens: list of
        blocks}``, each block a dict with ``indices`` and the four resources
        of `LIMITS`.
        """
        sizes = sizes or {}
        blocks, reach = {}, {}
        for ens in self.ensembles:
            idx = self.block_indices(ens, sizes.get(ens))
            rows = [{"indices": i, "compartments": len(i), "output axons": 0,
                     "input axons": 0, "synapse bits": 0} for i in idx]
            blocks[ens] = rows
            block_of = np.empty(ens.n_neurons, dtype=np.int64)
            position = np.empty(ens.n_neurons, dtype=np.int32)
            for b, i in enumerate(idx):
                block_of[i], position[i] = b, np.arange(len(i))
            for syn in self.synapses[ens]:
                if len(idx) == 1:
                    rows[0]["input axons"] += syn.n_axons
                    rows[0]["synapse bits"] += int(synapse_bits(syn.row_sizes()).sum())
                    reach[syn] = None
                    continue
                in_axons, bits, reach[syn] = syn.split(block_of, position, idx)
                for row, a, s in zip(rows, in_axons.tolist(), bits.tolist()):
                    row["input axons"] += a
                    row["synapse bits"] += s
        for ens in self.ensembles:
            for row in blocks[ens]:
                for syn, _ in self.outputs[ens]:
                    axons = syn.axon_of[row["indices"]]
                    axons = axons[axons >= 0]
                    row["output axons"] += len(axons) if reach[syn] is None else int(
                        reach[syn][axons].sum())
        return blocks

    def plan(self):
        """Sequential block sizes under which every block fits a core, or the best found.

        Starts from nengo-loihi's own split and, while a block exceeds a
        limit, makes its ensemble's blocks smaller in proportion to the excess
        (an output-axon excess too: a smaller source block reaches the same
        target blocks with fewer neurons). Where that does not help (a block
        straddling two regions that each reach many axons, as consecutive
        samples of a batched network do) it tries block sizes that divide the
        ensemble (boundaries then repeat with its structure), largest first,
        at most `MAX_DIVISOR_TRIES`; an ensemble nothing helps keeps its best
        size. Ensembles with a configured block shape are kept. Returns
        ``(sizes, blocks)``: ``{ens: block size}`` for the ensembles whose
        split differs from nengo-loihi's default, and `evaluate` of them.
        """
        default = {e: -(-e.n_neurons // self.default_split(e))
                   for e in self.ensembles if self.shapes[e] is None}
        sizes = dict(default)
        best, last, tries, frozen = {}, {}, {}, set()
        for _ in range(MAX_PLAN_ROUNDS):
            blocks = self.evaluate(sizes)
            changed = False
            for ens, size in sizes.items():
                ratio = max(row[name] / limit for row in blocks[ens] for name, limit in LIMITS)
                if ens not in best or ratio < best[ens][0]:
                    best[ens] = (ratio, size)
                if ratio <= 1 or ens in frozen:
                    last.pop(ens, None)
                    continue
                if ens in last and ratio > 0.99 * last[ens]:  # smaller did not help
                    smaller = [d for d in _divisors(ens.n_neurons) if d < size]
                    if smaller and tries.get(ens, 0) < MAX_DIVISOR_TRIES:
                        tries[ens] = tries.get(ens, 0) + 1
                        sizes[ens] = smaller[-1]
                    else:
                        sizes[ens] = best[ens][1]
                        frozen.add(ens)
                else:
                    sizes[ens] = max(1, min(size - 1, int(size / ratio)))
                last[ens] = ratio
                changed = changed or sizes[ens] != size
            if not changed:
                break
        return {e: s for e, s in sizes.items() if s != default[e]}, blocks


def _divisors(n):
    """The divisors of ``n``, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _matrix(conn, shape):
    """The connection's transform as nengo-loihi expands it: a scalar or 1-D one as a
    sparse diagonal, Sparse as csr, Dense as an array; shape ``(post, pre)``."""
    t = conn.transform
    if isinstance(t, nengo.transforms.NoTransform):
        init = np.array(1.0)
    elif isinstance(t, nengo.transforms.Sparse):
        init = t.init
        if not scipy.sparse.issparse(init):  # nengo's SparseMatrix
            init = scipy.sparse.csr_matrix((init.data, init.indices.T), shape=t.shape)
        return scipy.sparse.csr_matrix(init)
    else:
        init = np.asarray(t.init, dtype=float)
    if init.ndim < 2:
        return scipy.sparse.diags(init * np.ones(shape[0]), format="csr")
    return init


def _scale(w, gain):
    """``w`` (pre, post) with each post column multiplied by the post gain, as
    nengo-loihi scales connections into neurons (a gain nengo draws at build time,
    unknown here, counts as 1: only which weights are equal matters)."""
    n = w.shape[1]
    gain = np.asarray(gain, dtype=float) if isinstance(gain, np.ndarray) else np.ones(n)
    if scipy.sparse.issparse(w):
        return w @ scipy.sparse.diags(gain)
    return w * gain[None, :]


def _node_encoders(ens):
    """nengo-loihi's ``node_encoders`` synapse of ``ens``: on/off rows per dimension."""
    enc = np.asarray(ens.encoders if isinstance(ens.encoders, np.ndarray) else np.ones(
        (ens.n_neurons, ens.dimensions)), dtype=float)
    return np.vstack([enc.T, -enc.T])
