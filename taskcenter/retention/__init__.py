"""Retention: each kind of data is kept for a configured time, then pruned.

`policy` says what each kind is and how long it is kept, `prune` removes what is past
it in small batches (optionally exporting it first, `export`), `selectors` measures each
kind for the Admin page. The scheduler runs the prune once a day (registered in
`RetentionConfig.ready`), and `manage.py prune` runs it by hand, `--dry-run` included.
"""
