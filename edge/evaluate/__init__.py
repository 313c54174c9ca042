"""Measuring redaction: was each annotated face's detail destroyed, and what else was? The
measure (`protection`, `overredaction`), the set reader (`evalset`), and the parts of `veil eval`:
`runner` (the real pipeline, in memory), `metrics` (counting), `report`, `chart`, and `groups`
(recall per labelled group)."""
