"""`check_chip_limits`: does a popfit NIR graph fit a chip's resources, and what fits if not."""

import numpy as np

from .._validation import check_int, public
from ..exceptions import PopfitTypeError, PopfitValueError

#: Chip resources as the chip toolchains state them (Rockpool 3.1's Xylo mappers
#: and design rules: ``max_hidden_neurons``, ``max_output_neurons``, 16 input
#: channels; tests/nir_export/test_nir_chips.py checks them against Rockpool).
CHIPS = {
    "xylo-audio2": dict(max_inputs=16, max_neurons=1000, max_outputs=8),
    "xylo-imu": dict(max_inputs=16, max_neurons=496, max_outputs=16),
    "xylo-audio3": dict(max_inputs=16, max_neurons=992, max_outputs=32),
}


def _neuron_layers(graph):
    """``[(name, n_neurons, n_units, neurons_per_unit)]`` of a popfit graph's neuron nodes."""
    layers = []
    for name, node in graph.nodes.items():
        meta = getattr(node, "metadata", None) or {}
        if "popfit_layer" in meta:
            layers.append((name, int(meta["n_units"]) * int(meta["neurons_per_unit"]),
                           int(meta["n_units"]), int(meta["neurons_per_unit"])))
    return layers


@public
def check_chip_limits(graph, chip, *, spiking_outputs=True, raise_error=False):
    """What of a popfit NIR graph exceeds a chip's resources, and the popfit setting that fits.

    Parameters
    ----------
    graph : nir.NIRGraph
        A graph written by `popfit.to_nir` (its neuron nodes carry popfit's metadata).
    chip : str or dict
        A name in `CHIPS` (``"xylo-audio2"``, ``"xylo-imu"``, ``"xylo-audio3"``) or a
        dict with ``max_inputs``, ``max_neurons`` (hidden neurons, all layers) and
        ``max_outputs``.
    spiking_outputs : bool
        The chip's outputs are spikes of output neurons (Xylo): popfit's decoded
        output (an Affine read-out of the hidden spikes) then needs the host.

    raise_error : bool
        Raise `popfit.PopfitValueError` naming every exceeded limit, by how much,
        and what fits, instead of returning them.

    Returns
    -------
    list of dict
        One entry per exceeded limit: ``limit``, ``allowed``, ``needed``, ``excess`` and
        ``fix`` (what popfit configuration fits, or why popfit cannot make it fit).
        Empty when the graph fits.
    """
    if isinstance(chip, str):
        if chip not in CHIPS:
            raise PopfitValueError(
                f"chip must be one of {', '.join(map(repr, CHIPS))} or a dict of limits "
                f"(got {chip!r})")
        name, limits = chip, CHIPS[chip]
    elif isinstance(chip, dict):
        name, limits = "chip", chip
    else:
        raise PopfitTypeError(f"chip must be a name or a dict of limits (got {chip!r:.60})")
    for key in ("max_inputs", "max_neurons", "max_outputs"):
        if key not in limits:
            raise PopfitValueError(f"chip limits must give {key} (got keys {sorted(limits)})")
        check_int(limits[key], f"chip[{key!r}]", low=1)
    layers = _neuron_layers(graph)
    if not layers:
        raise PopfitValueError(
            "graph has no popfit neuron nodes (no 'popfit_layer' metadata); pass a graph "
            "written by popfit.to_nir")
    n_in = int(np.prod(graph.nodes["input"].input_type["input"]))  # (C, H, W) for a CNN
    n_out = int(graph.nodes["output"].output_type["output"][0])
    problems = []

    def add(limit, allowed, needed, fix):
        problems.append(dict(limit=limit, allowed=allowed, needed=needed,
                             excess=needed - allowed, fix=fix))

    if n_in > limits["max_inputs"]:
        add("input channels", limits["max_inputs"], n_in,
            f"the model's input has {n_in} features; popfit maps every input to one "
            f"channel and cannot reduce them: train a model on <= {limits['max_inputs']} "
            "inputs (e.g. pooled or projected features)")
    total = sum(n for _, n, _, _ in layers)
    units = sum(u for _, _, u, _ in layers)
    if total > limits["max_neurons"]:
        per_unit = limits["max_neurons"] // units
        fix = (f"convert with n_neurons={per_unit} per unit ({units} units x {per_unit} = "
               f"{units * per_unit} neurons)" if per_unit >= 1 else
               f"the model's {units} units exceed the chip even at 1 neuron per unit: "
               "train a smaller model")
        add(f"neurons on {name}", limits["max_neurons"], total, fix)
    if n_out > limits["max_outputs"]:
        add("output channels", limits["max_outputs"], n_out,
            f"the model has {n_out} outputs; popfit cannot merge them: train a model "
            f"with <= {limits['max_outputs']} outputs")
    if spiking_outputs:
        add("decoded (non-spiking) outputs", 0, n_out,
            "popfit's output is decoded (an Affine read-out of the hidden neurons' "
            "spikes), which the chip cannot compute: read the hidden spikes out and "
            f"decode on the host ({layers[-1][1]} hidden neurons as outputs)"
            + ("" if layers[-1][1] <= limits["max_outputs"] else
               f", which exceeds max_outputs={limits['max_outputs']} too"))
    if problems and raise_error:
        raise PopfitValueError(
            f"graph does not fit {name}: {describe_limits(problems)}")
    return problems


def describe_limits(problems):
    """The exceeded limits as text: ``"input channels: 64 > 16 (by 48), fix; ..."``."""
    return "; ".join(f"{p['limit']}: {p['needed']} > {p['allowed']} (by {p['excess']}), "
                     f"{p['fix']}" for p in problems)
