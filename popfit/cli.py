"""Command line: ``popfit fit TARGET ...`` and ``popfit table``.

Bad arguments exit with status 2 and one line on stderr, never a traceback;
an unexpected error (a popfit bug) exits with status 1 and one line too
(set ``POPFIT_DEBUG=1`` to see its traceback).
"""

import argparse
import os
import re
import sys

from .exceptions import PopfitError

_NEURONS = {"lif": "LIF", "relu": "RectifiedLinear"}
_TITLED = ("png", "pdf", "svg")  # formats whose metadata take a "Title"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse takes "-1e3" (unlike "-1" or "-1.5") for an option, so
        # "--domain -1e3 1e3" failed with "expected 2 arguments"; read every
        # float literal, exponents and inf/nan included, as a negative number
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)

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
    f.add_argument("--plot", metavar="FILE",
                   help="write a plot of the fit to this file (format from the extension: "
                   "png, pdf, svg, ...; none: png, appended)")
    f.add_argument("--save", metavar="JSON", help="save the fit to this file")
    t = sub.add_parser("table", help="NRMSE against N, popfit next to Nengo's default tuning")
    t.add_argument("--targets", nargs="+", default=["tanh", "sigmoid", "linear"])
    t.add_argument("--neurons", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    t.add_argument("--neuron", choices=sorted(_NEURONS), default="lif")
    t.add_argument("--synapse", type=_synapse, default=None,
                   help="deployment synapse in s, or 'none' (default: rate-only)")
    t.add_argument("--seeds", type=int, default=20, help="Nengo default seeds (default 20)")
    return parser


def _output_file(path, option):
    """Refuse, before fitting, an output path that cannot be a new or existing file."""
    if not path:
        raise _UsageError(f"popfit fit: error: {option} needs a file name (got {path!r})")
    if path.endswith(tuple(os.sep + (os.altsep or ""))):
        example = os.path.join(path, "fit.json" if option == "--save" else "fit.png")
        raise _UsageError(f"popfit fit: error: {option} needs a file name, not a path ending "
                          f"in a separator (got {path!r}); e.g. {example!r}")
    if os.path.isdir(path):
        raise _UsageError(f"popfit fit: error: {option} needs a file name, not the "
                          f"directory {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _UsageError(f"popfit fit: error: {option} {path!r}: the directory {folder!r} "
                          "does not exist")


def _plot_file(path):
    """The file ``--plot`` writes and its format (from the extension; none: png)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(path)[1][1:].lower()
    if not ext:
        path, ext = f"{path}.png", "png"
    if ext not in formats:
        raise _UsageError(f"popfit fit: error: --plot {path!r}: matplotlib cannot write "
                          f"'.{ext}' files; use one of {', '.join(sorted(formats))}")
    _output_file(path, "--plot")
    return path, ext


def _cmd_fit(args, out):
    from .fit import fit_activation

    if args.save is not None:
        _output_file(args.save, "--save")
    if args.plot is not None:
        _output_file(args.plot, "--plot")
        plot_path, plot_format = _plot_file(args.plot)
    fit = fit_activation(
        args.target, args.neurons, neuron_type=_NEURONS[args.neuron], domain=args.domain,
        max_rate=args.max_rate, synapse=args.synapse, seed=args.seed)
    print(fit.report(), file=out)
    if args.save is not None:
        fit.save(args.save)
        print(f"saved fit to {args.save}", file=out)
    if args.plot is not None:
        import matplotlib.pyplot as plt

        from .plotting import _fit_title

        fig = fit.plot()  # titled with the rate and the expected spiking NRMSE (and synapse)
        title = _fit_title(fit, escape=False).replace("\n", ", ")
        metadata = {"Title": f"popfit fit: {title}"} if plot_format in _TITLED else None
        try:
            fig.savefig(plot_path, format=plot_format, dpi=110, metadata=metadata)
        finally:
            plt.close(fig)
        print(f"wrote plot to {plot_path}", file=out)


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
        print(f"popfit: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: one line, not a traceback, unless debugging
        if os.environ.get("POPFIT_DEBUG"):
            raise
        print(f"popfit: internal error: {type(err).__name__}: {_one_line(err)} (please report "
              "this popfit bug with the command line; POPFIT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1
    return 0


def _one_line(err):
    return " ".join(str(err).split())


def _entry():  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
