"""Fits on domains not centred on 0.

The exported bias of a -1-encoder neuron used to ignore the encoder sign when
the fit shifted the domain's midpoint to 0: on any off-centre domain the fit
was wrong while reporting success, and neurons fired above ``max_rate``.
Each check here is against nengo itself (its rate simulation of the exported
ensemble), not against popfit's own numbers.
"""

import nengo
import numpy as np
import pytest

import popfit

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()

NEURON_TYPES = [nengo.LIF(), nengo.LIFRate(), nengo.RectifiedLinear(),
                nengo.SpikingRectifiedLinear()]


def _nengo_rate_output(fit, x):
    """Decoded output of ``fit.network(spiking=False)`` simulated by nengo.Simulator."""
    dt = 0.001
    with nengo.Network() as net:
        stim = nengo.Node(lambda t: x[min(int(round(t / dt)) - 1, len(x) - 1)])
        pop = fit.network(spiking=False)
        nengo.Connection(stim, pop.input, synapse=None)
        probe = nengo.Probe(pop.output, synapse=None)
    with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
        sim.run_steps(len(x))
    return sim.data[probe][:, 0]


@pytest.mark.parametrize("neuron_type", NEURON_TYPES, ids=lambda nt: type(nt).__name__)
@pytest.mark.parametrize("target, domain", [
    ("softplus", (-3.0, -2.0)), ("tanh", (0.5, 4.0)), (lambda x: (x - 5) ** 2, (0.0, 10.0)),
])
def test_off_centre_domain_matches_nengo_and_respects_max_rate(neuron_type, target, domain):
    max_rate = 234.6
    fit = popfit.fit_activation(target, 3, neuron_type=neuron_type, domain=domain,
                                max_rate=max_rate, synapse=None, search=QUICK, seed=5)
    lo, hi = domain
    x = np.linspace(lo, hi, 20001)
    # no neuron exceeds max_rate anywhere in the domain (nengo's own rate curve)
    rates = nengo.LIFRate(tau_rc=neuron_type.tau_rc, tau_ref=neuron_type.tau_ref).rates(
        x[:, None] * fit.encoders, fit.gain, fit.bias) if hasattr(neuron_type, "tau_rc") \
        else np.maximum(x[:, None] * fit.encoders * fit.gain + fit.bias, 0)
    assert rates.max() <= max_rate * (1 + 1e-9)
    # both encoder signs are exercised by at least one of these fits, and the
    # fit is accurate: the old bias made these NRMSE ~0.1-0.7; the quick search
    # gives 0.050 for the parabola (0.0498 or 0.0500 depending on the last bits
    # of the decoder solve)
    assert fit.nrmse < 0.06
    xs = np.linspace(lo, hi, 201)
    np.testing.assert_allclose(_nengo_rate_output(fit, xs), fit.predict(xs),
                               rtol=1e-9, atol=1e-9 * np.abs(fit.decoders).sum() * max_rate)


def test_regressor_on_shifted_data_scores_as_on_centred_data():
    x = np.linspace(0, 10, 200)[:, None]
    y = (x[:, 0] - 5) ** 2
    shifted = popfit.PopulationRegressor(4, random_state=0).fit(x, y).score(x, y)
    centred = popfit.PopulationRegressor(4, random_state=0).fit(x - 5, y).score(x - 5, y)
    assert shifted > 0.95 and abs(shifted - centred) < 0.02


def test_negative_encoders_used_on_off_centre_domain():
    fit = popfit.fit_activation("softplus", 2, domain=(-3, -2), max_rate=234.6,
                                synapse=None, search=QUICK, seed=5)
    assert fit.nrmse < 1e-3
    assert fit.rates(np.linspace(-3, -2, 20001)).max() <= 234.6 * (1 + 1e-9)
