"""The networks: the Keras models built from a plan, checkpoints (loaded with safe_mode,
predicted with, evaluated) and the gradient probe. It may import `explorer.data` and
`explorer.core`, never the training recipe."""
