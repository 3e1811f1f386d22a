"""Command line: `python -m explorer build|train|evaluate|gradients|lesion|landscape|ship|bench`,
and `paths|signals|shattered` (in `cli_studies`).

Every command validates its arguments first and turns a ValueError into a one-line message
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from explorer.cli.imports import add_import_commands
from explorer.cli.inside import add_inside_commands
from explorer.cli.playground import add_playground_commands
from explorer.cli.studies import add_study_commands
from explorer.core import costs
from explorer.core.runtime import fast_training, quiet_tensorflow, thread_safe_tensorflow
from explorer.core.specs import make_spec
from explorer.train import cluster as clusters
from explorer.train.config import TrainConfig

# Commands that train, where TensorFlow's oneDNN kernels are turned on (see `fast_training`).
TRAINING_COMMANDS = ("train", "bench")


def cmd_build(args):
    spec = make_spec(args.depth, args.version, family=args.family, residual=not args.plain,
                     shortcut=args.shortcut)
    summary = costs.summarize(spec)
    if args.json:
        print(json.dumps(summary["totals"]))
    else:
        totals = summary["totals"]
        print(f"{spec.name}: {totals['params']:,} parameters ({totals['trainable_params']:,} "
              f"trainable), {totals['layers']} layers, {totals['flops']:,} multiply-adds")
        for row in summary["stages"]:
            print(f"  {row['stage']:<8} blocks {row['blocks']:>4}  out {row['output_shape']:<14} "
                  f"params {row['params']:>12,}  multiply-adds {row['flops']:>15,}")
    if args.save:
        if not str(args.save).endswith(".keras"):
            raise ValueError(f"--save must name a .keras file, got {args.save}")
        if not Path(args.save).resolve().parent.is_dir():  # before the build: a deep one takes minutes
            raise ValueError(f"cannot write {args.save}: No such file or directory")
        # deferred: keeps TensorFlow out of --help and light commands
        from explorer.nets.models import build_model

        try:
            build_model(spec).save(args.save)
        except OSError as err:
            raise ValueError(f"cannot write {args.save}: {err.strerror or err}") from None
        print(f"saved {args.save}", file=sys.stderr)


def cmd_train(args):
    cluster = clusters.from_env()  # first: a cluster run picks Keras' backend before Keras loads
    if args.config:
        try:
            values = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the config file {args.config}: {err}") from None
        if isinstance(values, dict):
            # how long this invocation may run is the command line's, not the file's (a run
            # capped on one machine resumes uncapped on the next)
            values = {**values, "max_seconds": args.max_seconds}
        config = TrainConfig.from_dict(values).validate()
    else:
        config = _config_from_args(args)
    if cluster:
        clusters.per_worker_batch(config.batch_size, cluster.size)  # refused before the wait to join
        clusters.start(cluster)
    from explorer.train.training import train  # deferred: keeps TensorFlow out of --help and light commands

    with clusters.run_folder(args.out, cluster) as folder:
        result = train(config, folder, verbose=1 if sys.stdout.isatty() else 2,
                       log=lambda m: print(m, flush=True))
        if cluster:  # the workers of one run agree on their final weights: the digests say so
            result.update(worker=cluster.index, workers=cluster.size,
                          weights_digest=clusters.weights_digest(Path(folder) / "model.keras"))
            if not cluster.chief:
                result["path"] = None  # its copy of the run is gone when this command ends
    print(json.dumps(result), flush=True)


def _config_from_args(args):
    return TrainConfig(
        depth=args.depth, version=args.version, residual=not args.plain, shortcut=args.shortcut,
        epochs=args.epochs, subset=args.subset, batch_size=args.batch_size, data=args.data or "",
        optimizer=args.optimizer, schedule=args.schedule,
        learning_rate=args.learning_rate or (1e-3 if args.optimizer == "adam" else 0.1),
        cutout=args.cutout, weight_decay=args.weight_decay, precision=args.precision,
        label_smoothing=args.label_smoothing, test_subset=args.test_subset, seed=args.seed,
        max_seconds=args.max_seconds, ema_momentum=args.ema, holdout=args.holdout).validate()


def cmd_evaluate(args):
    from explorer.nets.checkpoints import evaluate  # deferred: keeps PIL out of --help and light commands

    print(json.dumps(evaluate(args.checkpoint, args.data, limit=args.limit or None, tta=args.tta)))


def cmd_classify(args):
    # deferred: keeps PIL out of --help and light commands
    from explorer.nets.checkpoints import load_checkpoint
    from explorer.studies.classify import classify  # deferred: keeps PIL out of --help and light commands

    model = load_checkpoint(args.checkpoint)
    failed = []
    for image in args.images:
        try:
            top, _ = classify(model, image, top=args.top, tta=args.tta)
        except ValueError as err:  # say which file, and go on with the others
            print(f"error: {image}: {err}", file=sys.stderr)
            failed.append(image)
            continue
        if args.json:
            print(json.dumps({"image": image, "top": {name: round(p, 4) for name, p in top.items()}}))
        else:
            print(f"{image}: " + ", ".join(f"{name} {p:.3f}" for name, p in top.items()))
    if failed:
        raise ValueError(f"{len(failed)} of {len(args.images)} files could not be classified")


def cmd_gradients(args):
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.studies.probes import gradient_flow

    flow = gradient_flow(args.depth, args.version, batch_size=args.batch_size, seed=args.seed,
                         source=args.data)
    out = flow.to_dict()
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{flow.spec_name}, {flow.batch_size} images from {flow.data}")
        for name, p, r in zip(flow.layers, flow.plain, flow.residual):
            print(f"  {name:<28} plain {p:12.4g}   residual {r:12.4g}")


def cmd_bench(args):
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.train.training import bench_train

    config = TrainConfig(depth=args.depth, version=args.version, residual=not args.plain,
                         shortcut=args.shortcut, batch_size=args.batch_size, data=args.data or "",
                         precision=args.precision, steps_per_execution=args.steps_per_execution)
    result = bench_train(config, args.steps)
    print(json.dumps(result) if args.json else f"{result['model']}: {result['img_per_s']} img/s")


def cmd_ship(args):
    from explorer.shipped.pretrained import ship  # deferred: keeps PIL out of --help and light commands

    print(json.dumps(ship(args.run, args.name, args.data)))


def cmd_remeasure(args):
    from explorer.shipped.pretrained import remeasure  # deferred: keeps PIL out of --help and light commands

    for name in args.names:
        entry = remeasure(name, args.data)
        print(json.dumps({key: entry[key] for key in ("name", "test_accuracy", "test_accuracy_tta", "n")}))


def _checkpoints(args) -> list[str]:
    return [args.checkpoint] + ([args.compare] if args.compare else [])


def cmd_lesion(args):
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.studies.lesion import lesion_reading, lesion_study

    names = _checkpoints(args)
    # the budgets guard the app's shared host; here the user's own machine does the work
    results = lesion_study(names, args.samples, names, args.data, budget=False, use_stored=False)
    for result in results:
        if args.json:
            print(json.dumps(result))
            continue
        print(f"{result['model']}: baseline {result['baseline']:.4f} on {result['n']} test images")
        for name, acc, down in zip(result["blocks"], result["accuracy"], result["downsampling"]):
            shown = "n/a (shape changes)" if acc is None else f"{acc:.4f}"
            print(f"  without {name:<16} {shown}{'  (downsampling)' if down else ''}")
    if not args.json:
        print(lesion_reading(results).replace("**", ""))


def cmd_landscape(args):
  
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.studies.landscape import landscape_reading, landscape_study, landscape_summary

    names = _checkpoints(args)
    # the budgets guard the app's shared host; here the user's own machine does the work
    results = landscape_study(names, args.steps, args.samples, names, span=args.span, source=args.data,
                              seed=args.seed, budget=False, use_stored=False)
    for result in results:
        result["summary"] = landscape_summary(result)
    if args.json:
        for result in results:
            print(json.dumps(result))
    else:
        print(landscape_reading(results).replace("**", ""))
        print("; ".join(f"{result['model']}: {result['seconds']} s" for result in results))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p, depth=20):
        p.add_argument("--depth", type=int, default=depth, help="6n+2 (v1) or 9n+2 (v2)")
        p.add_argument("--version", type=int, default=1, help="1 or 2")
        p.add_argument("--plain", action="store_true", help="the plain twin: no shortcuts")
        p.add_argument("--shortcut", default="projection", help="projection or zeropad")

    p = sub.add_parser("build", help="describe a network (parameters, multiply-adds, stages)")
    model_args(p)
    p.add_argument("--family", default="cifar", help="cifar or imagenet")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--save", help="also build the Keras model and save it to this .keras file")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="train (or resume) a run into --out")
    model_args(p)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--subset", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--test-subset", type=int, default=0, help="first N test images per epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
    p.add_argument("--optimizer", default="sgd", help="sgd (Nesterov) or adam")
    p.add_argument("--schedule", default="cosine", help="cosine (with warm-up) or step")
    p.add_argument("--learning-rate", type=float, default=0.0, help="peak rate (default 0.1 sgd, 1e-3 adam)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--cutout", type=int, default=0)
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=0.0, help="stop after this wall time")
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep an average of the weights with this decay per step, e.g. 0.999 (0: off)")
    p.add_argument("--holdout", type=int, default=0,
                   help="keep the last N training images out of training; with --ema, the run "
                        "keeps the average only where it is better on them")
    p.add_argument("--out", required=True, help="run folder (resumes if it holds a backup)")
    p.add_argument("--config", help="a config.json to train with (the model options above are ignored)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("gradients", help="per-layer gradient norms, plain vs residual twin")
    p.add_argument("--depth", type=int, default=56)
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_gradients)

    p = sub.add_parser("bench", help="throughput of the training step")
    p.add_argument("what", choices=["train"])
    model_args(p)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps-per-execution", type=int, default=10)
    p.add_argument("--precision", default="auto", help="auto, float32, mixed_bfloat16, mixed_float16")
    p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("ship", help="evaluate a run and add it to pretrained/manifest.json")
    p.add_argument("run", help="a run folder written by train")
    p.add_argument("--name", required=True, help="manifest name, e.g. resnet20_v1")
    p.add_argument("--data", required=True, help="the archive or folder to evaluate on")
    p.set_defaults(func=cmd_ship)

    p = sub.add_parser("remeasure",
                       help="evaluate shipped checkpoints again (flips included) into the manifest")
    p.add_argument("names", nargs="+", help="manifest names, e.g. resnet20_v1")
    p.add_argument("--data", required=True, help="the archive or folder to evaluate on")
    p.set_defaults(func=cmd_remeasure)

    p = _checkpoint_parser(sub, "lesion", "test accuracy with each block deleted (Veit et al. 2016)",
                           compare=True)
    p.add_argument("--samples", type=int, default=1000, help="test images to use")
    p.add_argument("--json", action="store_true", help="print one JSON line per checkpoint")
    p.set_defaults(func=cmd_lesion)

    p = _checkpoint_parser(sub, "landscape",
                           "loss along filter-normalized random directions (Li et al. 2018)", compare=True)
    p.add_argument("--samples", type=int, default=128, help="test images the loss is computed on")
    p.add_argument("--steps", type=int, default=9, help="grid points per axis of the 2-D plane")
    p.add_argument("--span", type=float, default=1.0, help="how far out, in filter norms")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    p.add_argument("--json", action="store_true", help="print one JSON line per checkpoint")
    p.set_defaults(func=cmd_landscape)

    p = sub.add_parser("classify", help="top classes of image files, as the Classify tab shows them")
    p.add_argument("checkpoint", help="a .keras checkpoint, e.g. pretrained/resnet20_v1.keras")
    p.add_argument("images", nargs="+", help="image files (any format the Classify tab takes)")
    p.add_argument("--top", type=int, default=5, choices=range(1, 11), metavar="1-10")
    p.add_argument("--json", action="store_true", help="one JSON line per image")
    p.add_argument("--tta", default="none", choices=["none", "flip"],
                   help="flip: average with the mirror image's probabilities")
    p.set_defaults(func=cmd_classify)

    p = _checkpoint_parser(sub, "evaluate", "test accuracy of a .keras checkpoint")
    p.add_argument("--limit", type=int, default=0, help="first N test images (0: all)")
    p.add_argument("--tta", default="none", choices=["none", "flip"],
                   help="flip: also the accuracy with the mirror images' probabilities averaged in")
    p.add_argument("--json", action="store_true", help="print one JSON line (the default)")
    p.set_defaults(func=cmd_evaluate)
    add_study_commands(sub)
    add_playground_commands(sub)
    add_import_commands(sub)
    add_inside_commands(sub)

    p = sub.add_parser("overlay", help="a measurement per block, as the Architecture graph colours it")
    p.add_argument("checkpoint", nargs="?", help="a .keras checkpoint (gradient_trained, gradient_training, "
                   "lesion; optional for branch_share and gradient_paths); gradient_training reads its "
                   "folder's history.json")
    p.add_argument("--depth", type=int, default=56, help="the net at initialization: 6n+2 (v1) or 9n+2 (v2)")
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--kind", required=True, help="gradient, gradient_trained, gradient_training, lesion, "
                   "branch_share, ratio, branch_ratio, readout or gradient_paths")
    p.add_argument("--epoch", type=int, help="gradient_training's epoch (0: its first logged step; "
                   "default: the last)")
    p.add_argument("--samples", type=int, default=500, help="test images of the lesion overlay")
    p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_overlay)
    return parser


def cmd_overlay(args):
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.studies.overlays import as_text, overlay, run_history

    history = run_history(args.checkpoint) if args.kind == "gradient_training" and args.checkpoint else None
    # the budgets guard the app's shared host; here the user's own machine does the work
    result = overlay(args.depth, args.version, args.kind, args.checkpoint, history, args.epoch, args.data,
                     args.samples, budget=False)
    print(json.dumps(result) if args.json else as_text(result), flush=True)
    for thread in threading.enumerate():  # probes trace in the background: cut at exit, TF aborts
        if thread.name.startswith("trace-"):
            thread.join()


def _checkpoint_parser(sub, name: str, help_text: str, compare: bool = False):
    """A subcommand that reads a checkpoint (and, with `compare`, optionally a second one, its
    twin say) and test data."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("checkpoint")
    if compare:
        p.add_argument("--compare", help="a second checkpoint, side by side (its plain twin, say)")
    p.add_argument("--data", help="keras, synthetic, or an archive/folder")
    return p


def main(argv=None) -> int:
    quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in TRAINING_COMMANDS:  # nothing has imported TensorFlow yet
        fast_training()
    else:
        thread_safe_tensorflow()
    try:
        args.func(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
