"""The duplicate search of the dataset health check at 50,000 files (after decoding): hash bands vs the
quadratic all-pairs comparison (extrapolated from a sample), in one process run.

    .venv/bin/python benchmarks/bench_datacheck.py [--files 50000]
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from resnet_gui.core.evaluation.health import NEAR_BITS, ImageFacts, _near_groups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(0)
    hashes = [rng.getrandbits(64) for _ in range(args.files)]
    for i in range(0, args.files, 100):  # 1 % near-duplicates: 1-3 flipped bits
        h = hashes[i]
        for _ in range(rng.randint(1, 3)):
            h ^= 1 << rng.randrange(64)
        hashes[i + 1] = h
    items = [ImageFacts(Path(f"{i}.png"), 0, "train", dhash=h) for i, h in enumerate(hashes)]
    t0 = time.perf_counter()
    groups = _near_groups(items, set())
    banded = time.perf_counter() - t0
    sample = items[:2000]
    t0 = time.perf_counter()
    pairs = sum(1 for a in range(len(sample)) for b in range(a + 1, len(sample))
                if bin(sample[a].dhash ^ sample[b].dhash).count("1") <= NEAR_BITS)
    quadratic = (time.perf_counter() - t0) * (args.files / len(sample)) ** 2
    print(f"{args.files} hashes: hash bands {banded:.2f} s ({len(groups)} groups); all pairs would take about "
          f"{quadratic:.0f} s (measured on {len(sample)}, {pairs} pairs): {quadratic / banded:.0f}x")


if __name__ == "__main__":
    main()
