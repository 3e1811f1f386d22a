"""The measurements, one a module (gradient flow, lesion, landscape, deletion, paths, signals,
shattered gradients, overlays, classify and Grad-CAM, estimates, precompute) and the readings of
their numbers. It may import `explorer.train`, `explorer.shipped`, `explorer.nets`, `explorer.data`
and `explorer.core`."""
