"""Benchmark: the lesion study's passes (explorer/studies/lesion_pass.py: each deletion starts
from its block's input in one intact pass) against the plain way (the whole net again for every
deletion, `lesion.lesioned_accuracy` per block), on a shipped checkpoint, alternating.

    python bench/lesion.py [--checkpoint resnet56_v1] [--samples 256] [--pairs 3]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ARCHIVE, alternate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="resnet56_v1", help="a shipped checkpoint's name")
    parser.add_argument("--samples", type=int, default=256, help="first test images")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs")
    args = parser.parse_args()
    from explorer.data.cifar import load_cifar10
    from explorer.nets.checkpoints import load
    from explorer.shipped import pretrained
    from explorer.studies.lesion import lesioned_accuracy
    from explorer.studies.lesion_pass import accuracies_with_each_block_deleted

    model = load(pretrained.pretrained_path(args.checkpoint))
    data = load_cifar10(str(ARCHIVE) if ARCHIVE.exists() else "synthetic")
    x, y = data.x_test[: args.samples], data.y_test[: args.samples]

    def plain_way():
        return [lesioned_accuracy(model, x, y, (i,))
                for i, block in enumerate(model.blocks) if block.droppable]

    def shared_prefix():
        return accuracies_with_each_block_deleted(model, x, y)

    result = alternate("shared_prefix_s", shared_prefix, "whole_net_per_deletion_s", plain_way,
                       pairs=args.pairs)
    print(f"{args.checkpoint}, {args.samples} images: the plain way takes {result['median_ratio']:.2f}x "
          "the shared-prefix passes")


if __name__ == "__main__":
    main()
