"""The Gradio page, one module a tab (`architecture`, `train`, `gradients`, `classify`,
`insight`), each with its handlers beside its layout and one `build()`; `common`, `session`
and `jobs_view` hold what several tabs share. Gradio is imported here and in `app.py` only:
the work itself is in `explorer/`."""
