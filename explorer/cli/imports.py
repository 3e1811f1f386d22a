"""The command line's import of a user's model: `python -m explorer import FILE` (registered by
`cli.build_parser`). Like every command it validates first; a ValueError (a bad file, another
architecture, a proof that fails) becomes one line and exit status 2, and leaves nothing in --out."""

from __future__ import annotations

import json

from explorer.core.specs import net_name

SUMMARY_KEYS = ("depth", "version", "residual", "shortcut", "params", "max_abs_difference", "preprocess")


def cmd_import(args):
    from explorer.nets.importer import import_model  # deferred: keeps TensorFlow out of --help

    result = import_model(args.file, args.out, preprocess=args.preprocess, data=args.data, mean=args.mean)
    if args.json:
        print(json.dumps({key: result[key] for key in SUMMARY_KEYS}))
        return
    net = net_name(result["depth"], result["version"], result["residual"])
    print(f"{net} imported into {result['path']}: "
          f"{result['params']:,} parameters, {result['preprocess']} preprocessing, softmax outputs within "
          f"{result['max_abs_difference']:.2g} of the file's")


def add_import_commands(sub) -> None:
    """Adds the import subcommand to `sub` (argparse subparsers)."""
    p = sub.add_parser("import", help="a .keras or .h5 CIFAR-10 ResNet (the tutorial's, say) made a run "
                                       "folder of this app, its weights mapped and proven")
    p.add_argument("file", help="the model file: .keras, or a legacy .h5")
    p.add_argument("--preprocess", help="what the file's model takes: tutorial (the default: x/255 minus "
                   "the training images' per-pixel mean), tutorial-no-mean (x/255) or raw (pixels 0-255)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="keras, synthetic, or an archive/folder: the tutorial's mean is "
                        "computed from its training images, the proof uses its test images "
                        "(default $EXPLORER_DATA)")
    source.add_argument("--mean", help="a .npy file of the tutorial's per-pixel mean (x/255 units), "
                        "instead of computing it")
    p.add_argument("--out", required=True, help="the run folder to write (new, or empty)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_import)
