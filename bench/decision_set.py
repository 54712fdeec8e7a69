"""Self-reenactment on a decision set: training clips of collections that a DCNet run kept out.

    python -m bench.decision_set --collections retalk,latentsync,synctalk --out out/decision.json
    python -m bench.decision_set --collections retalk,latentsync,synctalk --methods geometric dcnet \
        --cross 2 --frames 60 --out out/decision_cross.json

The quality benchmark's people (:mod:`bench.quality`) decide nothing, and the held-out pairs of the
validation people are small crops with small mouths. A DCNet run with ``--set
exclude=COLLECTIONS`` (:mod:`jr2net.training.train_dcnet`) trains and validates on none of those
collections' people; this scores it (``$JR2NET_DCNET``) and the other methods on their clips as
:mod:`bench.quality` scores the benchmark's: at the clip's own size, frame 0 the source, the face
region from dlib on the true frame, per clip, mean and worst. Weights that trained on those people
(the shipped ones) score higher here than they would on people they never saw.

``--cross N`` adds cross-identity on the same people (:func:`bench.cross_identity.clip_pairs`):
each clip's first frame driven by the N clips after it, scored as :mod:`bench.quality` scores the
benchmark's photos (identity distance to the source, motion transfer), so identity questions are
decided here too, not on the benchmark's people.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.clips import collection_clips
from bench.cross_identity import clip_pairs, cross_identity
from bench.quality import cross_summary, self_summary
from bench.reenact_methods import METHODS
from bench.self_reenactment import self_reenactment
from bench.timing import write_report
from jr2net.training.settings import parse_strings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument(
        "--collections",
        required=True,
        help="comma-separated collections (training file-name prefixes) a DCNet run excluded",
    )
    parser.add_argument("--frames", type=int, default=90, help="first frames of each clip (default 90)")
    parser.add_argument(
        "--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS), help="default: all"
    )
    parser.add_argument(
        "--cross",
        type=int,
        default=0,
        metavar="N",
        help="also cross-identity: each clip's first frame driven by the N clips after it (default 0: none)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    collections = parse_strings(args.collections)
    try:
        clips = collection_clips(collections)
        cross = clip_pairs(clips, args.cross) if args.cross else None
    except ValueError as error:
        parser.error(str(error))
    methods = {name: METHODS[name] for name in args.methods}
    report, _ = self_reenactment(clips, methods, args.frames)
    print("\n".join(self_summary(report)))
    cross_report = None
    if cross is not None:
        cross_report, _ = cross_identity(cross, methods, args.frames)
        print("\n".join(cross_summary(cross_report)))
    write_report(
        args.out,
        [],
        [torch.device("cpu")],
        {
            "collections": list(collections),
            "frames_limit": args.frames,
            "methods": args.methods,
            "self_reenactment": report,
            "cross_identity": cross_report,
            "elapsed_s": time.perf_counter() - started,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
