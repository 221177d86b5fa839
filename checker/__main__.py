"""``python -m modelcheck``: the ``check`` command (modelcheck.launch)."""

from modelcheck.launch import main

main()
