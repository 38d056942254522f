"""`finetune`: train a converted model's weights through its populations' rate curves.

The fits (gains, biases, encoders, decoders) stay fixed; the unit-level
weights and biases of every layer (`popfit.conversion.spec.LayerSpec`) are
trained in jax through each population's exact decoded rate curve
(`popfit.training.curves`), and the network is built again from the trained
weights with the same fits. See ``benchmarks/bench_finetune.py`` for
measured accuracy and spike counts.
"""

import dataclasses
import numbers

import numpy as np

from .._optional import import_optional
from .._validation import check_bool, check_int, check_positive, check_seed, public
from ..exceptions import PopfitTypeError, PopfitValueError
from ..conversion.convert import build_network
from ..conversion.model import ConvertedModel
from ..conversion.quantize import quantize_model
from ..conversion.spec import check_samples
from .curves import forward_compiled, layer_constants, output_function, x64
from .domains import outside_shares, refit_layers
from .progress import Progress, device
from .model import FinetunedModel
from .quantized import model_forward, quant_of
from .weights import initial_params, spec_with, to_numpy

jax = import_optional("jax", "popfit.finetune")
optax = import_optional("optax", "popfit.finetune")
jnp = jax.numpy

LOSSES = ("auto", "cross_entropy", "mse", "distill")
#: Adam's step size over a training run: decayed to 0 by a cosine, or constant.
SCHEDULES = ("cosine", "constant")
#: Epochs without a lower held-out loss before early stopping ends training.
PATIENCE = 5
#: Largest difference between the jax forward and `ConvertedModel.rate_output`
#: accepted before training (guards against a neuron type whose curve differs).
FORWARD_TOLERANCE = 1e-6
#: Default largest share of a layer's pre-activations outside its fitted domain
#: after training before the layer is re-fitted (convert leaves about 1% outside).
DOMAIN_TOLERANCE = 0.02


def _check_fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PopfitTypeError(f"{name} must be a number in [0, 1) (got {value!r} of type "
                              f"{type(value).__name__})")
    if not 0.0 <= value < 1.0:
        raise PopfitValueError(f"{name} must be in [0, 1) (got {value!r}); e.g. 0.1 holds "
                               "out a tenth of X for early stopping")
    return float(value)


def _check_arguments(model, loss, y, epochs, learning_rate, batch_size, spike_cost,
                     validation_fraction, early_stopping, seed):
    if not isinstance(model, ConvertedModel):
        raise PopfitTypeError(f"model must be a popfit.ConvertedModel (made by popfit.convert) "
                              f"(got {type(model).__name__})")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise PopfitValueError(f"loss must be one of {', '.join(map(repr, LOSSES))} "
                               f"(got {loss!r})")
    if loss == "auto":
        loss = "distill" if y is None else "cross_entropy" if model.is_classifier else "mse"
    if loss in ("cross_entropy", "mse") and y is None:
        raise PopfitValueError(f"loss={loss!r} needs the targets y; pass y, or use "
                               "loss='distill' to match the source model's outputs")
    if loss == "cross_entropy" and not model.is_classifier:
        raise PopfitValueError("loss='cross_entropy' needs a classifier; this model is a "
                               "regressor: use loss='mse' or 'distill'")
    if isinstance(spike_cost, bool) or not isinstance(spike_cost, numbers.Real) \
            or not np.isfinite(spike_cost) or spike_cost < 0:
        raise PopfitValueError(f"spike_cost must be a finite number >= 0 (got {spike_cost!r})")
    validation_fraction = _check_fraction(validation_fraction, "validation_fraction")
    early_stopping = check_bool(early_stopping, "early_stopping")
    if early_stopping and validation_fraction == 0:
        raise PopfitValueError("early_stopping=True needs held-out samples "
                               "(validation_fraction > 0, got 0); set validation_fraction "
                               "(e.g. 0.1) or early_stopping=False")
    return (loss, check_int(epochs, "epochs"), check_positive(learning_rate, "learning_rate"),
            check_int(batch_size, "batch_size"), float(spike_cost), validation_fraction,
            early_stopping, check_seed(seed))


def _loss_function(model, loss, layers, spike_cost):
    """``f(params, X, t) -> (loss, (outputs, spikes))`` for the resolved ``loss``.

    With ``model.weight_bits`` the forward pass rounds the weights as the
    network does (`popfit.training.quantized`, straight-through gradients).
    """
    quant = quant_of(model)
    act = model.spec.output.activation
    out_fn = output_function(act)

    def cross_entropy(z, t):  # t: class indices (softmax) or 0/1 / probabilities (sigmoid)
        if act == "softmax":
            if t.ndim == 1:
                return optax.softmax_cross_entropy_with_integer_labels(z, t).mean()
            return optax.softmax_cross_entropy(z, t).mean()
        return optax.sigmoid_binary_cross_entropy(z, t).mean()

    def f(params, X, t):
        z, spikes = model_forward(params, layers, X, quant)
        if loss == "mse" or (loss == "distill" and act not in ("softmax", "sigmoid")):
            value = jnp.mean((out_fn(z) - t) ** 2)
        else:
            value = cross_entropy(z, t)
        return value + spike_cost * jnp.mean(spikes), (out_fn(z), spikes)
    return f


def targets(model, loss, X, y):
    """Training targets: class indices / 0-1 labels / values, or the source's outputs."""
    if loss == "distill":
        return model.spec.forward(X)[1]
    y = model._check_targets(y, len(X))
    if not model.is_classifier:
        return np.asarray(y, dtype=float).reshape(len(X), -1)
    if model.spec.multilabel:
        return np.asarray(y, dtype=float)
    classes = np.asarray(model.classes_)
    idx = np.searchsorted(classes, y) if np.all(np.diff(classes) > 0) else None
    if idx is None or np.any(idx >= len(classes)) or np.any(classes[np.minimum(
            idx, len(classes) - 1)] != y):
        idx = np.array([int(np.flatnonzero(classes == v)[0]) if np.any(classes == v) else -1
                        for v in y])
    if np.any(idx < 0):
        raise PopfitValueError(f"y has labels that are not among the model's classes "
                               f"{classes.tolist()}")
    if model.spec.output.activation == "sigmoid":  # binary: one logistic output
        return idx.astype(float)[:, None]
    return idx


def scores(model, loss, out, t):
    """Rate-level accuracy (classifiers) or RMSE (regressors) of outputs ``out`` vs ``t``.

    With ``loss="distill"`` a classifier's accuracy is its agreement with the
    source model's predictions.
    """
    if not model.is_classifier:
        return "rmse", float(np.sqrt(np.mean((out - t) ** 2)))
    if model.spec.multilabel:
        return "accuracy", float(np.mean(np.all((out > 0.5) == (t > 0.5), axis=1)))
    if out.shape[1] == 1:
        return "accuracy", float(np.mean((out[:, 0] > 0.5) == (t[:, 0] > 0.5)))
    ref = np.argmax(t, axis=1) if t.ndim == 2 else t
    return "accuracy", float(np.mean(np.argmax(out, axis=1) == ref))


@public
def finetune(model, X, y=None, *, loss="auto", epochs=20, learning_rate=1e-3, schedule="cosine",
             batch_size=32, spike_cost=0.0, validation_fraction=0.1, early_stopping=True,
             domain_tolerance=DOMAIN_TOLERANCE, seed=0, progress_bar=False):
    """Train a converted model's weights through its populations' exact rate curves.

    Every layer's unit-level weights and biases (the source model's, as read
    into ``model.spec``) are trained with Adam in jax, through each hidden
    population's decoded rate curve with its fit fixed (`popfit.training.curves`:
    the exact curve forward; the LIF onset smoothed for gradients only). The
    network is then built again from the trained weights with the same fits
    (except re-fitted domains, below), platform, ``connection_synapse`` and
    neuron types (without refit; with the model's ``weight_bits``, rounded
    again). Training starts from the source weights (``model.spec``), also
    for a model converted with refit, whose re-solved neuron-level weights
    are not used. ``model`` is unchanged.

    Convolutional and residual models (`popfit.training.weights`): a sparse
    weight matrix (a convolution with pooling, padding and normalization
    folded in) is trained nonzero by nonzero with its sparsity pattern fixed
    (the folded matrices share no single kernel in general; the layer stays
    one sparse nengo transform), and every input of a layer with skip
    connections is trained. With ``weight_bits`` every input of a layer is
    rounded with the layer's one shared step (`popfit.training.quantized`).

    After training, each hidden layer's pre-activations over ``X`` (in the
    converted network: fed by the previous population's decoded output) are
    checked against the domain its population was fitted on
    (`popfit.training.domains`). Where the share outside exceeds
    ``domain_tolerance``, the layer's domain is re-calibrated as `popfit.convert`
    does (99th percentile of ``|pre-activation|``) and its population fitted
    again on those pre-activations; training then continues once (the same
    ``epochs`` and early stopping) through the new fits. As `popfit.convert`'s
    refit, the re-fitted model is kept only if its held-out loss is not
    higher than before re-fitting (always, without a held-out share). The
    report gives the shares before and after, both held-out losses and
    whether the re-fit was kept.

    Parameters
    ----------
    model : popfit.ConvertedModel
    X : array_like, shape (n_samples, n_features)
        Training inputs.
    y : array_like, optional
        Targets: class labels (classifiers) or values (regressors), as for
        `ConvertedModel.score`. Not needed for ``loss="distill"``.
    loss : {"auto", "cross_entropy", "mse", "distill"}
        ``"cross_entropy"`` (classifiers: softmax or logistic outputs),
        ``"mse"`` (after the output nonlinearity), ``"distill"`` (match the
        source model's outputs with its original weights: cross-entropy
        against its probabilities for classifiers, squared error otherwise).
        ``"auto"``: cross-entropy for classifiers with ``y``, mse for
        regressors with ``y``, distill without ``y``.
    epochs : int
        Passes over the training share (fewer with early stopping).
    learning_rate : float
        Adam's (starting) step size.
    schedule : {"cosine", "constant"}
        ``"cosine"``: the step size decays from ``learning_rate`` to 0 over
        ``epochs`` (`learning_rate_schedule`; each run, also the one
        continued after a domain re-fit); ``"constant"``: it stays.
    batch_size : int
    spike_cost : float
        Added to the loss per second of expected spikes: ``spike_cost`` times
        the summed rates (Hz) of all hidden neurons, averaged over samples.
        `popfit.training.choose_spike_cost` picks it on a held-out share.
    validation_fraction : float
        Share of ``X`` held out (in [0, 1)) to choose the epoch by its loss.
    early_stopping : bool
        Stop after `PATIENCE` epochs without a lower held-out loss; the
        weights with the lowest held-out loss are kept (the starting weights,
        ``best_epoch`` 0, if no epoch lowers it).
    domain_tolerance : float or None
        Largest share (in [0, 1)) of a layer's pre-activations over ``X``
        allowed outside its fitted domain after training before the layer is
        re-fitted (convert's calibration leaves about 1% outside). None: check
        and report only, never re-fit.
    seed : int
        Shuffling and the held-out split; the same seed gives identical weights.
    progress_bar : bool
        Write one progress line to stderr, updated every epoch (epoch, losses,
        elapsed time); off by default.

    Returns
    -------
    FinetunedModel
        A new `ConvertedModel` with ``finetune_report``.
    """
    (loss, epochs, learning_rate, batch_size, spike_cost, validation_fraction,
     early_stopping, seed) = _check_arguments(model, loss, y, epochs, learning_rate,
                                              batch_size, spike_cost, validation_fraction,
                                              early_stopping, seed)
    if domain_tolerance is not None:
        domain_tolerance = _check_fraction(domain_tolerance, "domain_tolerance")
    X = check_samples(X, model.n_features_in_, "X", model.spec.input_shape).astype(float)
    fits = list(model.fits)
    layers = layers0 = [layer_constants(fit) for fit in fits]  # checks the neuron types
    t = targets(model, loss, X, y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_held = int(round(validation_fraction * len(X)))
    if validation_fraction > 0 and (n_held < 1 or n_held >= len(X)):
        raise PopfitValueError(f"validation_fraction={validation_fraction:g} of {len(X)} "
                               "samples leaves no held-out or no training sample; pass more "
                               "samples or change validation_fraction")
    held, train = order[:n_held], order[n_held:]
    progress_bar = check_bool(progress_bar, "progress_bar")
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise PopfitValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))} "
                               f"(got {schedule!r})")
    settings = dict(epochs=epochs, learning_rate=learning_rate, schedule=schedule,
                    batch_size=batch_size,
                    spike_cost=spike_cost, early_stopping=early_stopping,
                    progress=Progress(epochs) if progress_bar else None)
    with x64():
        start = initial_params(model.spec)
        _check_forward(model, start, layers, X[:64])
        params, (run, best_epoch) = _train(model, loss, layers, start, X, t, train, held,
                                           rng, **settings)
        before = outside_shares(fits, _preactivations(start, layers, X))
        pre = _preactivations(params, layers, X)
        refits, domains = refit_layers(fits, pre, 1.0 if domain_tolerance is None
                                       else domain_tolerance)
        if any(row["refitted"] for row in domains):
            if progress_bar:
                settings["progress"] = Progress(epochs, "after re-fitting domains")
            new_layers = [layer_constants(fit) for fit in refits]
            new_params, (more, kept) = _train(model, loss, new_layers, params, X, t, train,
                                              held, rng, **settings)
            # kept unless it raises the held-out loss (as convert's refit)
            loss_old, loss_new = (_held_loss(model, loss, ls, spike_cost, p, X[held], t[held])
                                  for ls, p in ((layers, params), (new_layers, new_params)))
            keep = loss_old is None or loss_new <= loss_old
            for row in domains:
                row.update(heldout_loss_before_refit=loss_old, heldout_loss_after_refit=loss_new,
                           refit_kept=keep if row["refitted"] else None)
            run += more
            if keep:
                fits, layers, params, best_epoch = refits, new_layers, new_params, run - more + kept
                pre = _preactivations(params, layers, X)
            else:
                for row in domains:
                    row["domain_after"] = row["domain_before"]
        for row, b, a in zip(domains, before, outside_shares(fits, pre)):
            row.update(outside_start=b, outside_after=a)
        f = _loss_function(model, loss, layers, spike_cost)
        evals = {}
        for name, idx in (("train", train), ("heldout", held)):
            if len(idx) == 0:
                continue
            value, (out, spikes) = f(params, X[idx], t[idx])
            evals[name] = (float(value), np.asarray(out), float(np.mean(spikes)))
        spikes_before = float(np.mean(model_forward(start, layers0, X[train],
                                                    quant_of(model))[1]))
    params = to_numpy(params)
    new = rebuild(model, params, X, FinetunedModel, fits=fits)
    report = {"epochs": run, "best_epoch": best_epoch, "loss": loss, "schedule": schedule,
              "train_loss": evals["train"][0],
              "heldout_loss": evals["heldout"][0] if "heldout" in evals else None,
              "spikes_per_second_before": spikes_before,
              "spikes_per_second_after": evals["train"][2], "spike_cost": spike_cost,
              "domain_tolerance": domain_tolerance, "domains": domains,
              "device": device(),
              "max_output_difference": None}
    for name, idx in (("train", train), ("heldout", held)):
        if name in evals:
            key, value = scores(model, loss, evals[name][1], t[idx])
        else:
            key, value = ("accuracy" if model.is_classifier else "rmse"), None
        report[f"{name}_{key}"] = value
    if len(held):
        source = model.spec.forward(X[held])[1]
        report["max_output_difference"] = float(np.max(np.abs(new.rate_output(X[held])
                                                               - source)))
    new.finetune_report = report
    return new


def _held_loss(model, loss, layers, spike_cost, params, X, t):
    """The loss on the held-out share (None without one)."""
    if len(X) == 0:
        return None
    return float(_loss_function(model, loss, layers, spike_cost)(params, X, t)[0])


def _preactivations(params, layers, X):
    return [np.asarray(z) for z in forward_compiled(params, layers, X, with_pre=True)[2]]


def _check_forward(model, params, layers, X):
    """Refuse training if the jax forward differs from the model's own rate output."""
    if model.weights is not None:
        return  # rate_output runs the re-solved weights, not the spec's
    expected = model._outputs(np.asarray(model_forward(params, layers, X, quant_of(model))[0]))
    got = model.rate_output(X)
    if np.max(np.abs(expected - got)) > FORWARD_TOLERANCE * max(
            1.0, float(np.max(np.abs(got)))):
        raise PopfitValueError("finetune's rate-level forward differs from the model's "
                               "rate_output; the fits' neuron types are not supported")


def _train(model, loss, layers, params, X, t, train, held, rng, *, epochs, learning_rate,
           schedule, batch_size, spike_cost, early_stopping, progress=None):
    """Adam (`learning_rate_schedule`) over shuffled batches from ``params``; the kept
    params and (epochs run, kept)."""
    f = _loss_function(model, loss, layers, spike_cost)
    opt = optax.adam(learning_rate if schedule == "constant" else learning_rate_schedule(
        learning_rate, epochs, -(-len(train) // batch_size)))
    state = opt.init(params)

    @jax.jit
    def step(params, state, xb, tb):
        value, grads = jax.value_and_grad(lambda p: f(p, xb, tb)[0])(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    held_loss = jax.jit(lambda p: f(p, X[held], t[held])[0]) if len(held) else None
    # the starting weights compete too: kept if no epoch lowers the held-out loss
    best = np.inf if held_loss is None else float(held_loss(params))
    best_params, stale, run, best_epoch = params, 0, 0, 0
    for _ in range(epochs):
        perm = train[rng.permutation(len(train))]
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            params, state, batch_loss = step(params, state, X[idx], t[idx])
        run += 1
        value = None if held_loss is None else float(held_loss(params))
        if progress is not None:
            progress.update(run, float(batch_loss), value, done=run == epochs)
        if held_loss is None:
            best_params, best_epoch = params, run
            continue
        if value < best:
            best, best_params, stale, best_epoch = value, params, 0, run
        else:
            stale += 1
            if early_stopping and stale >= PATIENCE:
                if progress is not None:
                    progress.update(run, float(batch_loss), value, done=True)
                break
    if not early_stopping:
        best_params, best_epoch = params, run
    return best_params, (run, best_epoch)


def learning_rate_schedule(learning_rate, epochs, steps_per_epoch):
    """Adam's step size per step: cosine decay from ``learning_rate`` to 0 over ``epochs``.

    Each training run (and the run continued after a domain re-fit) decays
    its own step size, so the last epochs settle the weights instead of
    jumping around the minimum (``benchmarks/bench_finetune.py`` measures it
    against ``schedule="constant"``).
    """
    return optax.cosine_decay_schedule(learning_rate, max(1, epochs * steps_per_epoch))


def rebuild(model, params, X, cls=ConvertedModel, fits=None, **extra):
    """A new model of ``cls`` from ``model`` with unit-level weights ``params``.

    ``params``: ``(W, bias)`` per layer of ``model.spec`` (`popfit.training.weights`,
    numpy values); ``fits``: the
    hidden layers' fits (default ``model.fits``). The network is built by
    `popfit.conversion.convert.build_network` (no refit); each layer's
    `LayerInfo` gets its fit's domain, and the share outside it and the mean
    rate over ``X`` in the converted network; with ``model.weight_bits`` it
    is rounded again (`popfit.conversion.quantize.quantize_model`).
    """
    fits = tuple(model.fits if fits is None else fits)
    spec = spec_with(model.spec, params)
    with x64():
        pre = _preactivations(jax.tree_util.tree_map(jnp.asarray, params),
                              [layer_constants(fit) for fit in fits], X)
    infos = []
    for info, fit, z, share in zip(model.layers, fits, pre, outside_shares(fits, pre)):
        infos.append(dataclasses.replace(info, domain=tuple(float(v) for v in fit.domain),
                                         fraction_outside=share,
                                         mean_rate=float(np.mean(fit.rates(z.ravel()))),
                                         rate_basis="calibration"))
    network = build_network(spec, fits, model.connection_synapse, model.seed,
                            platform=model.platform)
    new = cls(spec, fits, infos, network, neuron_type=model.neuron_type,
              n_neurons=model.n_neurons, max_rate=model.max_rate,
              connection_synapse=model.connection_synapse, seed=model.seed,
              platform=model.platform, **extra)
    if model.weight_bits is not None:
        new = quantize_model(new, model.weight_bits, X[:500])
    return new
