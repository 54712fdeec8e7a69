"""One module per ``jr2net`` subcommand, each with ``add_parser(subparsers)`` and ``run(args)``."""
