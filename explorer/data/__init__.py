"""CIFAR-10 from its sources (keras, an archive or folder, synthetic) with its cache, and
uploads and sketches turned into the 32x32 image a net sees (the one preprocessing path).
It may import `explorer.core` only."""
