"""Measuring redaction: was each annotated face's detail destroyed? Used by tests and benchmarks."""
