"""The checkpoints shipped in `pretrained/`: the manifest and the names a user picks them by,
their training histories, and their studies stored once (looked up here, never run here).
It may import `explorer.nets`, `explorer.data` and `explorer.core`; not `explorer.train`, its sibling."""
