"""modelcheck's built-in rules, one module per family. Written against the public ``modelcheck.rule`` API."""

# checked by modelcheck.registry: an unrelated package named `rules` must not be mistaken for ours
SENTINEL = "modelcheck-builtin-rules"
