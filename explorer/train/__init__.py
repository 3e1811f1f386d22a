"""The training recipe: its config, input pipeline, callbacks, weight averaging, the run itself,
run folders, several machines (cluster) and the hardware it trains on. It may import
`explorer.nets`, `explorer.data` and `explorer.core`; not `explorer.shipped`, its sibling."""
