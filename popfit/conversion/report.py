"""The text report of a `ConvertedModel`, formatted from its `summary` (plain data).

One place for report formatting, as lmfit's printfuncs: the model gathers
the numbers (``ConvertedModel.summary``), this module lays them out.
"""


def format_report(s, extra=()):
    """The report text of summary ``s`` (``ConvertedModel.summary()``), then the ``extra`` lines.

    Parameters
    ----------
    s : dict
        A converted model's summary.
    extra : sequence of str
        Further sections (the platform's chip mapping).
    """
    lines = [
        f"[[popfit converted model]] {s['source']} ({s['task']}), "
        f"{s['n_features']} inputs -> {s['n_outputs']} outputs",
        f"    neurons       : {s['n_neurons_per_unit']} x {s['neuron_type']} per unit, "
        f"max_rate {s['max_rate']:g} Hz, connection_synapse {s['connection_synapse']:g} s",
        f"    platform      : {s['platform']}"
        + ("" if s["weight_bits"] is None else f", {s['weight_bits']}-bit weights"),
        "    noise model   : fits optimized for spike noise at synapse "
        + ("None (rates only)" if s["synapse"] is None
           else f"{s['synapse']:g} s"),
        "    domains       : "
        + ("from calibration data (99th percentile of |pre-activation|)"
           if s["calibrated"] else "activation defaults (no calibration data)"),
        f"    fits          : {s['n_fits']} distinct, converted in {s['convert_time']:.2f} s",
        "[[layers]]",
        "    layer                       activation  units  neurons  domain"
        "            outside   fit NRMSE  mean rate",
    ]
    for h in s["hidden_layers"]:
        outside = ("    n/a" if h["fraction_outside_domain"] is None
                   else f"{100 * h['fraction_outside_domain']:6.2f}%")
        dom = f"[{h['domain'][0]:.3g}, {h['domain'][1]:.3g}]"
        err = h["fit_spiking_nrmse"]  # expected at the fits' synapse, or rate-only
        err = h["fit_nrmse"] if err is None else err
        lines.append(
            f"    {h['label'][:27]:<27} {h['activation']:<11} {h['n_units']:5d}  "
            f"{h['total_neurons']:7d}  {dom:<16} {outside}  {err:10.4f}"
            f"  {h['mean_rate_hz']:6.1f} Hz")
    lines.append(
        f"    {s['output_label'][:27]:<27} {s['output_activation']:<11} "
        f"{s['n_outputs']:5d}        -  decoded to a Node; nonlinearity in numpy")
    lines.append(
        f"    total: {s['total_neurons']} neurons, about "
        f"{s['expected_spikes_per_second']:.0f} spikes/s "
        f"(mean rates over the {s['hidden_layers'][0]['mean_rate_basis']})")
    lines.append(f"    min presentation_time: {s['min_presentation_time']:g} s")
    r = s["refit"]
    if r is not None:
        kept = ", ".join("re-solved" if k else "kept (re-solve not better)"
                         for k in r["kept"])
        lines += [
            "[[refit]] weights leaving each hidden layer re-solved for its neurons "
            f"(noise model {r['synapse']:g} s; layers: {kept})",
            f"    held-out rate-level error ({r['n_holdout']} of "
            f"{r['n_fit'] + r['n_holdout']} calibration samples; solved on the rest):",
            f"    decoded output RMS {r['output_rms_before']:.4g} -> "
            f"{r['output_rms_after']:.4g}; after the {s['output_activation']} "
            f"nonlinearity, mean |error| {r['output_mae_before']:.3g} -> "
            f"{r['output_mae_after']:.3g}",
        ]
    lines += list(extra)
    return "\n".join(lines)
