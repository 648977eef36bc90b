"""Agreement throughput of plugin_sdk.metrics (pure Python, stdlib only).

Prints agreement computations per second for:
- a 200-box object-detection pair: random boxes, two labelers each drawing a jittered copy;
- large boxes of one class that all overlap (one 200 x 200 assignment, the worst case);
- a 50-entity named-entity pair: two labelers with shifted span edges and a few other classes.

    .venv/bin/python bench/metrics.py [--seconds 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time

from plugin_sdk.metrics import agreement

CLASSES = ["CAR", "BUS", "PERSON", "BIKE"]


def box(x0: float, y0: float, x1: float, y1: float, cat: str, mid: str) -> dict:
    corners = [(x0, y1), (x0, y0), (x1, y0), (x1, y1)]
    return {"mid": mid, "type": "rectangle", "categories": [{"name": cat}], "children": {},
            "boundingPoly": [{"normalizedVertices": [{"x": x, "y": y} for x, y in corners]}]}


def box_pair(rng: random.Random, count: int, size: tuple[float, float], jitter: float,
             classes: list[str] = CLASSES) -> tuple[dict, dict]:
    truth = []
    for _ in range(count):
        w, h = rng.uniform(*size), rng.uniform(*size)
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        truth.append((x, y, x + w, y + h, rng.choice(classes)))

    def labeler(name: str) -> dict:
        anns = []
        for k, (x0, y0, x1, y1, cat) in enumerate(truth):
            moved = [v + rng.gauss(0, jitter) for v in (x0, y0, x1, y1)]
            anns.append(box(min(moved[0], moved[2]), min(moved[1], moved[3]),
                            max(moved[0], moved[2]), max(moved[1], moved[3]), cat, f"{name}{k}"))
        rng.shuffle(anns)  # labelers draw in their own order
        return {"OBJECT_DETECTION_JOB": {"annotations": anns}}

    return labeler("a"), labeler("b")


def ner_pair(rng: random.Random, count: int) -> tuple[dict, dict]:
    spans, cursor = [], 0
    for _ in range(count):
        cursor += rng.randint(5, 40)
        length = rng.randint(3, 20)
        spans.append((cursor, length, rng.choice(["ORG", "PER", "LOC", "DATE"])))
        cursor += length

    def labeler(name: str) -> dict:
        anns = []
        for k, (begin, length, cat) in enumerate(spans):
            begin += rng.choice([0, 0, 0, -1, 1, 2])
            length = max(1, length + rng.choice([0, 0, -1, 1]))
            if rng.random() < 0.1:
                cat = rng.choice(["ORG", "PER", "LOC", "DATE"])
            anns.append({"mid": f"{name}{k}", "categories": [{"name": cat}],
                         "beginOffset": begin, "content": "x" * length})
        return {"NAMED_ENTITIES_RECOGNITION_JOB": {"annotations": anns}}

    return labeler("a"), labeler("b")


def rate(a: dict, b: dict, seconds: float) -> tuple[float, float]:
    score = agreement(a, b)  # warm up
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        agreement(a, b)
        runs += 1
    return runs / elapsed, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = {
        "200 boxes, jittered copies": box_pair(rng, 200, (0.02, 0.1), 0.004),
        "200 boxes, one class, all overlap": box_pair(rng, 200, (0.6, 0.9), 0.01, ["CAR"]),
        "50 entities": ner_pair(rng, 50),
    }
    for name, (a, b) in cases.items():
        per_second, score = rate(a, b, args.seconds)
        print(f"{name:30s} {per_second:9.1f} agreements/s  {1000 / per_second:8.2f} ms each"
              f"  (agreement {score:.3f})")


if __name__ == "__main__":
    main()
