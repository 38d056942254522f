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

from .layer import MAX_LAYER_NEURONS, PopulationLayer
from .neuron import (
    PopulationNeuron,
    export_neuron_type,
    warn_tau_ref_below_dt,
)
from .transforms import DENSE_MAX_ENTRIES, transform_matrix

__all__ = ["DENSE_MAX_ENTRIES", "MAX_LAYER_NEURONS", "PopulationLayer",
           "PopulationNeuron", "export_neuron_type", "transform_matrix",
           "warn_tau_ref_below_dt"]
