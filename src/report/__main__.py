"""Compare the jobs of a sweep (or summarise one run) from what they logged.

    python -m src.report logs/train/multiruns/<time>     # one row per job
    python -m src.report logs/train/runs/<time>          # a single run

Writes report.md, report.csv (one row per job: the overrides and the recorded
versions, commit and device (run.yaml) that differ between jobs, best and final
validation metrics, test metrics, epochs, time, and the error of a job that
failed) and curves.png into that dir.
"""

import argparse
import sys

from src.report import ReportError, make_report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a run dir (holds .hydra/) or a sweep dir (holds numbered job dirs)")
    args = parser.parse_args(argv)
    try:
        written = make_report(args.path)
    except ReportError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
