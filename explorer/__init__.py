"""ResNet Explorer: see why residual networks train when plain deep networks don't."""

__version__ = "0.1.0"
