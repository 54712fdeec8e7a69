"""The ``jr2net`` command: one parser, one module per subcommand under :mod:`jr2net.commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jr2net import __version__
from jr2net.assets import AssetError
from jr2net.commands import assets, demo, live, reconstruct, reenact, render, serve

COMMANDS = (assets, render, reconstruct, reenact, live, serve, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jr2net", description="Live 3D face reconstruction and reenactment (JR2Net)."
    )
    parser.add_argument("--version", action="version", version=f"jr2net {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (1 for a clear, expected failure)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (AssetError, ValueError, FileNotFoundError, OSError) as error:
        print(f"jr2net {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
