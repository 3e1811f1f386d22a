"""The command line's look inside a net: `python -m explorer inside|readout` (registered by
`cli.build_parser`). Like every command they validate first; a ValueError becomes a one-line
message and exit status 2. The command line runs on the user's own machine: the app's budgets
do not apply, the bounds of the values do."""

from __future__ import annotations

import json

from explorer.core.limits import READOUT_TEST, READOUT_TRAIN

# What `inside --json` prints per block (the maps are the page's; numbers only here)
INSIDE_KEYS = ("block", "input_norm", "skip_norm", "branch_norm", "sum_norm", "output_norm", "branch_ratio",
               "cosine", "readout_top")
READOUT_KEYS = ("model", "blocks", "accuracy", "model_accuracy", "train_images", "test_images", "penalty")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def cmd_inside(args):
    from explorer.data.images import prepare  # deferred: keeps PIL out of --help and light commands
    from explorer.nets.checkpoints import load_checkpoint  # deferred: keeps PIL out of --help
    from explorer.studies.inside import inside  # deferred: keeps TensorFlow out of --help
    from explorer.studies.readout import readout_study  # deferred: keeps TensorFlow out of --help

    pixels = prepare(args.image)  # a missing or unreadable image is refused before the net loads
    model = load_checkpoint(args.checkpoint)
    probes = None
    if args.data:  # the shipped checkpoints' stored probes at once, any other's fitted now
        probes = readout_study([args.checkpoint], source=args.data, budget=False)[0]
    result = inside(model, pixels, args.block, readout=probes)
    blocks = [b for b in result["blocks"] if args.block in (None, "", b["block"])]
    if args.json:
        for block in blocks:
            print(json.dumps({key: block[key] for key in INSIDE_KEYS}))
        return
    top = ", ".join(f"{entry['class']} {entry['probability']:.3f}" for entry in result["top"])
    print(f"{result['model']} on {args.image}: {top}")
    for b in blocks:
        read = "" if not b["readout_top"] else "  read-out " + ", ".join(e["class"] for e in b["readout_top"])
        print(f"  {b['block']:<16} |x| {_number(b['input_norm']):>8}  |F(x)| {_number(b['branch_norm']):>8}  "
              f"|out| {_number(b['output_norm']):>8}  |F(x)|/|x| {_number(b['branch_ratio']):>6}  "
              f"cos {_number(b['cosine']):>6}{read}")


def cmd_readout(args):
    # deferred: keeps TensorFlow out of --help and light commands
    from explorer.studies.readout import readout_reading, readout_study

    names = [args.checkpoint] + ([args.compare] if args.compare else [])
    # the budgets guard the app's shared host; here the user's own machine does the work
    results = readout_study(names, args.train, args.test, args.data, budget=False, use_stored=False)
    if args.json:
        for result in results:
            print(json.dumps({key: result[key] for key in READOUT_KEYS}))
        return
    for result in results:
        print(f"{result['model']}: the checkpoint {result['model_accuracy']:.4f} on {result['test_images']} "
              f"test images; probes fitted on {result['train_images']} training images")
        for name, accuracy in zip(result["blocks"], result["accuracy"]):
            print(f"  {name:<16} read-out {accuracy:.4f}")
    print(readout_reading(results).replace("**", ""))


def add_inside_commands(sub) -> None:
    """Adds the inside and readout subcommands to `sub` (argparse subparsers)."""
    p = sub.add_parser("inside", help="what every block adds on an image: ||x||, ||F(x)||, ||x + F(x)||, "
                                      "their ratio and cosine, and the read-out's top classes")
    p.add_argument("checkpoint", help="a .keras checkpoint, e.g. pretrained/resnet56_v1.keras")
    p.add_argument("image", help="an image file (any format the Classify tab takes)")
    p.add_argument("--block", help="only this block, e.g. stage2_block3")
    p.add_argument("--data", help="with it, each block's read-out (stored for a shipped checkpoint, "
                                  "else fitted now on this data's images)")
    p.add_argument("--json", action="store_true", help="one JSON line per block")
    p.set_defaults(func=cmd_inside)

    p = sub.add_parser("readout", help="a linear read-out per block (Alain and Bengio 2016): its test "
                                       "accuracy against the checkpoint's own")
    p.add_argument("checkpoint")
    p.add_argument("--compare", help="a second checkpoint, side by side (its plain twin, say)")
    p.add_argument("--data", help="keras, synthetic, or an archive/folder (default $EXPLORER_DATA)")
    p.add_argument("--train", type=int, default=READOUT_TRAIN,
                   help="training images the probes are fitted on")
    p.add_argument("--test", type=int, default=READOUT_TEST, help="test images they are scored on")
    p.add_argument("--json", action="store_true", help="print one JSON line per checkpoint")
    p.set_defaults(func=cmd_readout)
