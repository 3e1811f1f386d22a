"""The command line, `python -m explorer ...`: every command checks its arguments first and turns a
ValueError into one line and exit status 2. The top layer: it may import every other folder
of `explorer`, and nothing else in `explorer` imports it but `explorer.__main__`."""
