"""Reading a built nengo network: which popfit layers it holds and what connects to them.

nengo makes a new ``Neurons`` object at every ``ensemble.neurons`` access, so
connections are matched by the ensemble behind them, not by identity.
Used by weight quantization (`popfit.conversion.quantize`) and the chip
mapping (`popfit.loihi`).
"""

import nengo

from .network import PopulationLayer


def connects_into(conn, ensemble):
    """True if ``conn`` ends at ``ensemble.neurons`` (nengo makes a new Neurons
    object at every access, so ``is`` does not work)."""
    post = conn.post_obj
    return isinstance(post, nengo.ensemble.Neurons) and post.ensemble is ensemble


def connects_from(conn, ensemble):
    pre = conn.pre_obj
    return isinstance(pre, nengo.ensemble.Neurons) and pre.ensemble is ensemble


def base_object(obj):
    """The Ensemble or Node behind a Neurons object or a slice."""
    obj = getattr(obj, "obj", obj)  # ObjView
    return obj.ensemble if isinstance(obj, nengo.ensemble.Neurons) else obj


def population_layers(network):
    return [net for net in network.all_networks if isinstance(net, PopulationLayer)] + (
        [network] if isinstance(network, PopulationLayer) else [])
