"""Check step for step that Keras PixelDA --preset homework trains as the homework's PyTorch.

python -m apps.check_fidelity [--steps N ...] [--batch-size N] [--seed S]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from apps.common import make_parser, run_app
from preprocessing.files import InputError


def parser() -> argparse.ArgumentParser:
    p = make_parser("check_fidelity", __doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[1, 10], help="tables after these steps")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (small: CPU)")
    return p


def main(args: argparse.Namespace) -> None:
    if importlib.util.find_spec("torch") is None:
        raise InputError("check_fidelity needs PyTorch: pip install -r requirements-torch.txt")
    if min(args.steps) < 1 or args.batch_size < 2:
        raise InputError("--steps must be >= 1 and --batch-size >= 2")
    from evaluation.fidelity import check
    from evaluation.fidelity_rows import failures, table

    tables = check(tuple(sorted(set(args.steps))), args.batch_size, args.seed)
    failed = []
    for step, rows in tables.items():
        heading = f"After {step} step{'s' * (step > 1)} (batch {args.batch_size}, seed {args.seed})"
        print(f"\n## {heading}\n")
        print(table(rows))
        failed += [f"step {step}: {name}" for name in failures(rows)]
    if failed:
        print("\nFAILED: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)
    print("\nall rows within their tolerances")


if __name__ == "__main__":
    run_app(main, parser())
