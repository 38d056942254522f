"""Command line: ``popfit fit TARGET ...`` and ``popfit table``.

Bad arguments exit with status 2 and one line on stderr, never a traceback.
"""

import argparse
import sys

from .exceptions import PopfitError

_NEURONS = {"lif": "LIF", "relu": "RectifiedLinear"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}")


class _UsageError(Exception):
    pass


def _synapse(text):
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--synapse must be a time constant in seconds or 'none' (got {text!r})") from None


def build_parser():
    parser = _Parser(prog="popfit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    f = sub.add_parser("fit", help="fit a population and print the report")
    f.add_argument("target", help="tanh, sigmoid, logistic, linear, identity, relu, softplus")
    f.add_argument("--neurons", type=int, default=4, help="number of neurons (default 4)")
    f.add_argument("--neuron", choices=sorted(_NEURONS), default="lif",
                   help="neuron type: lif (nengo.LIF) or relu (nengo.RectifiedLinear)")
    f.add_argument("--domain", type=float, nargs=2, metavar=("LO", "HI"),
                   help="input interval (default: the target's own)")
    f.add_argument("--max-rate", type=float, default=400.0, help="Hz (default 400)")
    f.add_argument("--synapse", type=_synapse, default=0.005,
                   help="deployment synapse in s, or 'none' for a rate-only fit (default 0.005)")
    f.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    f.add_argument("--plot", metavar="PNG", help="write a plot of the fit to this file")
    f.add_argument("--save", metavar="JSON", help="save the fit to this file")
    t = sub.add_parser("table", help="NRMSE against N, popfit next to Nengo's default tuning")
    t.add_argument("--targets", nargs="+", default=["tanh", "sigmoid", "linear"])
    t.add_argument("--neurons", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    t.add_argument("--neuron", choices=sorted(_NEURONS), default="lif")
    t.add_argument("--synapse", type=_synapse, default=None,
                   help="deployment synapse in s, or 'none' (default: rate-only)")
    t.add_argument("--seeds", type=int, default=20, help="Nengo default seeds (default 20)")
    return parser


def _cmd_fit(args, out):
    from .fit import fit_activation

    fit = fit_activation(
        args.target, args.neurons, neuron_type=_NEURONS[args.neuron], domain=args.domain,
        max_rate=args.max_rate, synapse=args.synapse, seed=args.seed)
    print(fit.report(), file=out)
    if args.save:
        fit.save(args.save)
        print(f"saved fit to {args.save}", file=out)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        fig = fit.plot()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote plot to {args.plot}", file=out)


def _cmd_table(args, out):
    from .baseline import compute_accuracy, format_accuracy

    print(format_accuracy(compute_accuracy(
        args.targets, args.neurons, neuron_type=_NEURONS[args.neuron], synapse=args.synapse,
        seeds=range(args.seeds))), file=out)


def main(argv=None, out=None):
    """Run the command line; returns the exit status."""
    out = sys.stdout if out is None else out
    try:
        args = build_parser().parse_args(argv)
        {"fit": _cmd_fit, "table": _cmd_table}[args.command](args, out)
    except _UsageError as err:
        print(str(err).splitlines()[0], file=sys.stderr)
        return 2
    except (PopfitError, OSError) as err:
        print(f"popfit: error: {err}", file=sys.stderr)
        return 2
    return 0


def _entry():  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
