"""``jr2net assets``: show where each asset was found; ``assets build-ict`` rebuilds the face model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jr2net.assets import ALL_ASSETS, ASSETS_ENV, AssetError, locate, search_dirs
from jr2net.ict_builder import build_ict_npz


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "assets",
        help="show where the face model and MediaPipe bundle were found",
        description=(
            f"Find and validate the assets (searched in ${ASSETS_ENV}, ./assets, ../shared/assets). "
            "Exits non-zero naming any missing or corrupt file and its upstream source."
        ),
    )
    parser.set_defaults(run=run)
    actions = parser.add_subparsers(dest="assets_action", metavar="ACTION")
    build = actions.add_parser(
        "build-ict",
        help="rebuild ict_face_model.npz from an ICT-FaceKit checkout",
        description="Rebuild ict_face_model.npz from the FaceXModel/ OBJs of an ICT-FaceKit checkout.",
    )
    build.add_argument("ict_facekit_dir", type=Path, help="ICT-FaceKit checkout (or its FaceXModel/ folder)")
    build.add_argument("-o", "--output", type=Path, default=Path("ict_face_model.npz"), help="output npz")
    build.add_argument("--commit", help="upstream commit recorded in the file (default: read with git)")
    build.set_defaults(run=run_build_ict)


def run(args: argparse.Namespace) -> int:
    missing = 0
    for spec in ALL_ASSETS:
        try:
            path = locate(spec)
        except AssetError as error:
            missing += 1
            print(f"MISSING {spec.filename}: {error}", file=sys.stderr)
            continue
        print(f"{spec.filename}: {path}  ({spec.description}; {spec.license})")
    if missing:
        print(f"searched: {', '.join(str(d) for d in search_dirs())}", file=sys.stderr)
    return 1 if missing else 0


def run_build_ict(args: argparse.Namespace) -> int:
    output = build_ict_npz(args.ict_facekit_dir, args.output, commit=args.commit)
    print(f"wrote {output}")
    return 0
