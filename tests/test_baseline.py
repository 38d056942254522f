import nengo
import numpy as np
import pytest
from nengo.builder.ensemble import get_activities

import popfit
from popfit.baseline import nengo_default_median, nengo_default_nrmse, nengo_default_tuning
from popfit.exceptions import PopfitTypeError, PopfitValueError


@pytest.mark.parametrize("target, expected", [("tanh", 0.082), ("linear", 0.047)])
def test_median_matches_design_table(target, expected):
    """The medians measured independently with real nengo builds before popfit existed
    (project design notes, "Nengo default random tuning" table: LIF tau_rc 0.02 s,
    tau_ref 0.002 s, N=4, default domains, nengo.Ensemble defaults and LstsqL2(reg=0.1),
    NRMSE on 1001 points, median over 50 seeds): tanh 0.082, linear 0.047."""
    median = nengo_default_median(target, 4, seeds=range(50))
    assert median == pytest.approx(expected, rel=0.1)


def test_lazy_export():
    assert popfit.nengo_default_nrmse is nengo_default_nrmse


@pytest.mark.parametrize("seed", [0, 7])
def test_matches_a_real_nengo_build(seed):
    """Gains, biases, encoders and NRMSE equal what nengo itself builds and solves."""
    x = np.linspace(-3, 3, 1001)
    with nengo.Network() as net:
        ens = nengo.Ensemble(4, 1, radius=3.0, seed=seed)
        out = nengo.Node(size_in=1)
        conn = nengo.Connection(ens, out, function=np.tanh, eval_points=x[:, None],
                                scale_eval_points=False, solver=nengo.solvers.LstsqL2(reg=0.1))
    with nengo.Simulator(net, progress_bar=False) as sim:
        built = sim.data[ens]
        decoders = sim.data[conn].weights[0]
    a = get_activities(built, ens, x[:, None])
    y = np.tanh(x)
    reference = np.sqrt(np.mean((a @ decoders - y) ** 2)) / np.ptp(y)

    encoders, gain, bias = nengo_default_tuning(4, seed=seed)
    np.testing.assert_allclose(encoders, built.encoders[:, 0])
    np.testing.assert_allclose(gain, built.gain)
    np.testing.assert_allclose(bias, built.bias)
    nrmse = nengo_default_nrmse("tanh", 4, seeds=[seed])
    assert nrmse.shape == (1,)
    assert nrmse[0] == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("neuron_type", ["LIF", "relu"])
def test_max_rate_is_never_exceeded(neuron_type):
    max_rate = 150.0
    x = np.linspace(-1, 1, 2001)
    for seed in range(20):
        encoders, gain, bias = nengo_default_tuning(
            6, neuron_type=neuron_type, max_rate=max_rate, seed=seed)
        nt = popfit.neurons.resolve_neuron_type(neuron_type)
        rates = nt.rates(x[:, None] * encoders, gain, bias)
        assert rates.max() <= max_rate * (1 + 1e-9)
        # the highest rate of each neuron is drawn from Uniform(max_rate / 2, max_rate)
        assert np.all(rates.max(axis=0) >= max_rate / 2 * (1 - 1e-9))


def test_asymmetric_domain_maps_onto_the_whole_tuning_range():
    # a shifted domain is as easy as the centred one: the input is mapped onto [-1, 1]
    shifted = nengo_default_nrmse(lambda x: np.tanh(x - 10), 4, domain=(7, 13), seeds=range(5))
    centred = nengo_default_nrmse("tanh", 4, seeds=range(5))
    np.testing.assert_allclose(shifted, centred, rtol=1e-9)


def test_deterministic_and_one_value_per_seed():
    a = nengo_default_nrmse("sigmoid", 3, seeds=[3, 1, 4])
    b = nengo_default_nrmse("sigmoid", 3, seeds=[3, 1, 4])
    assert a.shape == (3,)
    np.testing.assert_array_equal(a, b)
    assert a[1] == nengo_default_nrmse("sigmoid", 3, seeds=[1])[0]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_neurons": 0}, PopfitValueError, r"nengo_default_nrmse: n_neurons must be an integer >= 1 \(got 0\)"),
    ({"seeds": []}, PopfitValueError, r"nengo_default_nrmse: seeds must hold at least one"),
    ({"seeds": [3, -1]}, PopfitValueError,
     r"seeds\[1\] must be an integer in \[0, 4294967295\] \(got -1\)"),
    ({"max_rate": 600.0}, PopfitValueError, r"max_rate must be < 500 .*\(got 600\)"),
    ({"neuron_type": "Izhikevich"}, PopfitValueError, r"unknown neuron_type 'Izhikevich'"),
    ({"n_points": 1.5}, PopfitTypeError, r"n_points must be an integer"),
])
def test_errors_name_function_argument_and_value(kwargs, error, match):
    args = {"n_neurons": 2, **kwargs}
    n = args.pop("n_neurons")
    with pytest.raises(error, match=match):
        nengo_default_nrmse("tanh", n, **args)


def test_signed_model_network_is_the_converted_model_with_signed_neurons():
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from popfit.baseline import signed_model_network
    from popfit.conversion import present

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((16, 8), activation="tanh", max_iter=300, random_state=0).fit(
            X[:500], y[:500])
    model = popfit.convert(mlp, n_neurons=1, calibration_data=X[:500], refit=False,
                           search=popfit.SearchOptions.quick(), seed=0)
    net = signed_model_network(model)
    assert [ens.n_neurons for ens in net.layers] == [16, 8]
    assert all(isinstance(ens.neuron_type, nengo.RegularSpiking)
               and isinstance(ens.neuron_type.base_type, nengo.Tanh) for ens in net.layers)
    out = present(net, X[500:520], 0.3, seed=0, progress_bar=False)
    agree = np.mean(out.argmax(1) == mlp.predict_proba(X[500:520]).argmax(1))
    assert agree >= 0.9, agree  # one signed neuron per unit computes the MLP
    relu = MLPClassifier((4,), activation="relu", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        relu.fit(X[:50], y[:50])
    with pytest.raises(PopfitValueError, match=r"activation 'relu', which has no signed "
                                               r"baseline neuron"):
        signed_model_network(popfit.convert(relu, n_neurons=1, search=popfit.SearchOptions.quick()))
