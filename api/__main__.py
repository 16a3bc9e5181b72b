"""``python -m api``: the taskbot CLI."""

from api.cli import main

main()
