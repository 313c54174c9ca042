"""`veil bench`: what Veil costs on this machine. `recorded` times decode, encode and the whole
pipeline on a generated clip in one process; `live` runs each live profile as its own `veil run`
child, pinned to N cores; `client` is the preview reader `live` can add. Nothing is re-exported:
`recorded` loads onnxruntime, which `live` (whose children load their own) does not need."""
