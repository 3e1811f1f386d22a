"""The command line's paths-and-signals studies: `python -m explorer paths|signals|shattered`
(registered by `cli.build_parser`). Like every command they validate first; a ValueError
becomes a one-line message and exit status 2. The command line runs on the user's own
machine: the app's budgets do not apply, the bounds of the values do."""

from __future__ import annotations

import json

from explorer.studies.paths import path_lengths, paths_reading
from explorer.studies.shattered import shattered, shattered_reading
from explorer.studies.signals import signal_propagation, signals_reading
from explorer.studies.subjects import fresh, trained


def _subject(args):
    """The net the command measures: the checkpoint, or a fresh net from --depth and --version."""
    if args.checkpoint and args.depth is not None:
        raise ValueError("give a checkpoint or --depth (a fresh net at initialization), not both")
    if args.checkpoint:
        return trained(args.checkpoint)
    if args.depth is None:
        raise ValueError("give a checkpoint, or --depth and --version for a fresh net at initialization")
    return fresh(args.depth, args.version, args.seed, getattr(args, "plain", False))


def cmd_paths(args):
    result = path_lengths(_subject(args), args.samples, args.subsets, args.method, args.data)
    if args.json:
        print(json.dumps(result))
        return
    print(paths_reading(result).replace("**", ""))
    for k, count, g, total in zip(result["lengths"], result["path_counts"], result["gradient_per_path"],
                                  result["total"]):
        print(f"  length {k:>4}  paths {float(count):10.3g}  gradient per path {g:10.3g}  "
              f"total {total:10.3g}")


def cmd_signals(args):
    result = signal_propagation(_subject(args), args.samples, args.data)
    if args.json:
        print(json.dumps(result))
        return
    print(signals_reading([result]).replace("**", ""))
    for name, mean_sq, variance, branch in zip(result["blocks"], result["mean_sq"], result["variance"],
                                               result["branch_variance"]):
        print(f"  {name:<16} mean² {mean_sq:10.3g}  variance {variance:10.3g}  "
              f"branch variance {branch:10.3g}")


def cmd_shattered(args):
    result = shattered(args.depth, args.version, args.points, args.seed, args.data)
    print(json.dumps(result) if args.json else shattered_reading(result).replace("**", ""))


def cmd_precompute(args):
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.studies.precompute import precompute

    written = precompute(args.names, args.data, log=lambda line: print(line, flush=True))
    print(json.dumps({"written": [str(path) for path in written]}))


def add_study_commands(sub) -> None:
    """Adds the paths, signals and shattered subcommands to `sub` (argparse subparsers)."""

    def net_args(p, plain: bool):
        p.add_argument("checkpoint", nargs="?", help="a .keras checkpoint; or --depth for a fresh net")
        p.add_argument("--depth", type=int, help="a fresh net at initialization: 6n+2 (v1) or 9n+2 (v2)")
        p.add_argument("--version", type=int, default=1, help="1 or 2 (with --depth)")
        if plain:
            p.add_argument("--plain", action="store_true", help="the plain twin (with --depth)")
        p.add_argument("--seed", type=int, default=0, help="seed of a fresh net's weights (and of the paths)")
        p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
        p.add_argument("--json", action="store_true", help="print one JSON line")

    p = sub.add_parser("paths", help="gradient per path length of a residual net (Veit et al. 2016)")
    net_args(p, plain=False)
    p.add_argument("--samples", type=int, default=64, help="test images")
    p.add_argument("--subsets", type=int, default=1,
                   help="passes per path length (a random path per image in each)")
    p.add_argument("--method", default="single",
                   help="single (one path, Veit et al.'s) or subnet (the k-block net)")
    p.set_defaults(func=cmd_paths)

    p = sub.add_parser("signals", help="signal propagation per block (Brock, De and Smith 2021)")
    net_args(p, plain=True)
    p.add_argument("--samples", type=int, default=64, help="test images")
    p.set_defaults(func=cmd_signals)

    p = sub.add_parser("shattered", help="gradient autocorrelation along a line of inputs, plain vs residual "
                                          "(Balduzzi et al. 2017)")
    p.add_argument("--depth", default="20,56,110", help="depths separated by commas")
    p.add_argument("--version", type=int, default=1, help="1 or 2")
    p.add_argument("--points", type=int, default=256, help="points along the line")
    p.add_argument("--seed", type=int, default=0, help="seed of the nets' weights")
    p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_shattered)

    p = sub.add_parser("precompute", help="measure the app's default lesion studies, landscapes and "
                                           "read-outs of shipped checkpoints once, into pretrained/studies/")
    p.add_argument("names", nargs="+", help="manifest names, e.g. resnet56_v1 plain56_v1")
    p.add_argument("--data", required=True, help="the archive the app measures on")
    p.set_defaults(func=cmd_precompute)
