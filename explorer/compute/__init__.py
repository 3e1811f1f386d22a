"""Where work runs outside the request: the background training jobs (a subprocess each) and the
warm processes they are handed to. It may import `explorer.studies` and the folders below it."""
