"""The command line's residual playground (issue #34): `python -m explorer playground` trains
one net of the twins on points in the plane and prints where it ended; with `--sweep` it trains
both at each depth and prints the final losses against depth (registered by
`cli.build_parser`).

Every value is read as text and checked by `core.playground_settings`, so a bad one is a
one-line message and exit status 2, as for every command.
"""

from __future__ import annotations

import json
import math

from explorer.core.playground_settings import read_settings, read_steps

DEFAULT_STEPS = 500
DEFAULT_SWEEP_STEPS = 300  # `playground_sweep.DEFAULT_SWEEP_STEPS` (checked by a test), kept TensorFlow-free
RESULT_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
SETTINGS = ("data", "noise", "points", "train_fraction", "features", "blocks", "width", "norm", "init",
            "optimizer", "learning_rate", "batch_size", "seed")


def _finite(value):
    """A number for JSON: None in place of NaN or infinity (a diverged net's loss)."""
    return value if isinstance(value, (int, str)) or value is None or math.isfinite(value) else None


def _settings(args):
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    return read_settings(**given)


def cmd_playground(args):
    settings = _settings(args)
    if args.sweep:
        if args.plain:
            raise ValueError("--plain picks the net of one run; a sweep trains both nets at each depth")
        _sweep(args, settings)
        return
    steps = read_steps(args.steps if args.steps is not None else DEFAULT_STEPS)
    net = "plain" if args.plain else "residual"
    from explorer.studies.playground import PairTrainer  # deferred: TensorFlow only once a net trains

    trainer = PairTrainer(settings, nets=(net,))
    trainer.prepare()  # compiled first: steps_per_s is the training's, not XLA's
    snap = trainer.run(steps)
    out = {key: _finite(snap[net][key]) for key in RESULT_KEYS}
    out["steps_per_s"] = round(steps / snap["seconds"], 1)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{net} net, {settings.blocks} blocks of width {settings.width}, {settings.data} points, "
          f"{steps} steps: training loss {out['train_loss']} (accuracy {out['train_accuracy']}), "
          f"test loss {out['test_loss']} (accuracy {out['test_accuracy']}), {out['steps_per_s']} steps/s")


def _sweep(args, settings):
    # deferred: TensorFlow only once a net trains (not for --help or a refused value)
    from explorer.studies.playground_sweep import depth_sweep, sweep_reading

    steps = args.steps if args.steps is not None else DEFAULT_SWEEP_STEPS
    result = depth_sweep(settings, args.sweep, steps)
    if args.json:
        for row in result["rows"]:
            print(json.dumps({key: _finite(value) for key, value in row.items()}))
        return
    print(f"{'blocks':>6}  {'net':<8}  {'train loss':>10}  {'test loss':>9}  {'train acc':>9}  "
          f"{'test acc':>8}")
    for row in result["rows"]:
        print(f"{row['blocks']:>6}  {row['net']:<8}  {row['train_loss']:>10.4f}  {row['test_loss']:>9.4f}  "
              f"{row['train_accuracy']:>9.3f}  {row['test_accuracy']:>8.3f}")
    print(sweep_reading(result).replace("**", ""))


def add_playground_commands(sub) -> None:
    """Adds the playground subcommand to `sub` (argparse subparsers). Values are read as text
    and checked by `playground_settings.read_settings` (bounds there)."""
    p = sub.add_parser("playground", help="a plain net and its residual twin on points in the plane "
                                          "(--sweep: final training loss against depth)")
    p.add_argument("--data", help="spiral (default), circles, xor, moons or gaussian")
    p.add_argument("--noise", help="jitter of each point, 0 to 0.5 (default 0.1)")
    p.add_argument("--points", help="points in all, 50 to 2000 (default 500)")
    p.add_argument("--train-fraction", dest="train_fraction",
                   help="share of the points trained on, 0.1 to 0.9 (default 0.5)")
    p.add_argument("--features", help="what the net sees of a point: x,y,x2,y2,xy (default x,y)")
    p.add_argument("--blocks", help="blocks of the net, 1 to 128 (default 8)")
    p.add_argument("--width", help="units of each dense layer, 8 to 64 (default 16)")
    p.add_argument("--norm", help="none, batch (default) or layer")
    p.add_argument("--init", help="default, or zero: each branch's last layer starts at zero")
    p.add_argument("--optimizer", help="adam (default) or sgd (momentum 0.9)")
    p.add_argument("--learning-rate", dest="learning_rate", help="1e-5 to 1 (default 0.01)")
    p.add_argument("--batch-size", dest="batch_size", help="points a step, at most the training points "
                                                           "(default 32)")
    p.add_argument("--seed", help="seed of the points, the weights and the batches (default 0)")
    p.add_argument("--steps", help=f"training steps (default {DEFAULT_STEPS}; {DEFAULT_SWEEP_STEPS} a depth "
                                   "with --sweep)")
    p.add_argument("--plain", action="store_true", help="the plain twin, not the residual net")
    p.add_argument("--sweep", help="depths to train both nets at, e.g. 2,4,8,16,32,64 (one row per depth "
                                   "and net)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=cmd_playground)
