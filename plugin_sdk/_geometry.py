"""Geometry and assignment behind ``plugin_sdk.metrics``: stdlib only, since plugin containers
may lack numpy and scipy."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import pairwise

Pt = tuple[float, float]
Box = tuple[float, float, float, float]


def signed_area(pts: Sequence[Pt]) -> float:
    """Shoelace area of a polygon: positive when its vertices turn counter-clockwise."""
    total = 0.0
    x0, y0 = pts[-1] if pts else (0.0, 0.0)
    for x1, y1 in pts:
        total += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return total / 2


def _dedupe(pts: Sequence[Pt]) -> list[Pt]:
    out = [p for i, p in enumerate(pts) if p != pts[i - 1]]
    return out or list(pts[:1])


def is_convex(pts: Sequence[Pt]) -> bool:
    """Whether a polygon (no repeated consecutive vertices) is convex, collinear runs allowed."""
    n = len(pts)
    if n < 4:
        return True
    turn = 0
    for i in range(n):
        (ax, ay), (bx, by), (cx, cy) = pts[i - 2], pts[i - 1], pts[i]
        cross = (bx - ax) * (cy - by) - (by - ay) * (cx - bx)
        if cross:
            if turn == 0:
                turn = 1 if cross > 0 else -1
            elif (cross > 0) != (turn > 0):
                return False
    # Same-sign turns also describe a star that winds twice (a pentagram); a convex polygon's
    # edges change x and y direction at most twice each.
    for axis in (0, 1):
        signs = [d > 0 for d in (pts[i][axis] - pts[i - 1][axis] for i in range(n)) if d]
        if sum(signs[i] != signs[i - 1] for i in range(len(signs))) > 2:
            return False
    return True


def _clip(subject: list[Pt], clip: Sequence[Pt]) -> list[Pt]:
    # Sutherland-Hodgman against a convex counter-clockwise `clip`. The subject may be concave:
    # the output can carry zero-width bridges, but its signed area stays exact.
    out = subject
    for k in range(len(clip)):
        if not out:
            break
        (ax, ay), (bx, by) = clip[k - 1], clip[k]
        ex, ey = bx - ax, by - ay
        points, out = out, []
        sx, sy = points[-1]
        s_side = ex * (sy - ay) - ey * (sx - ax)
        for px, py in points:
            p_side = ex * (py - ay) - ey * (px - ax)
            if (p_side >= 0) != (s_side >= 0):
                t = s_side / (s_side - p_side)
                out.append((sx + (px - sx) * t, sy + (py - sy) * t))
            if p_side >= 0:
                out.append((px, py))
            sx, sy, s_side = px, py, p_side
    return out


class Shape:
    """A polygon prepared for repeated IoU: counter-clockwise vertices, area, bounding box,
    whether it is an axis-aligned box (fast path) and whether it is convex."""

    __slots__ = ("area", "box", "convex", "is_box", "pts")

    def __init__(self, pts: Sequence[Pt]) -> None:
        pts = [(float(x), float(y)) for x, y in pts]
        if len(pts) == 4:
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = pts
            # Four corners, each edge axis-parallel (not a bow tie): the usual rectangle, kept
            # in one canonical order so that equal boxes have equal vertices.
            if ((x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0)
                    or (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)):
                xa, xb, ya, yb = min(x0, x2), max(x0, x2), min(y0, y2), max(y0, y2)
                if xa < xb and ya < yb:
                    self.pts = [(xa, ya), (xb, ya), (xb, yb), (xa, yb)]
                    self.box, self.area = (xa, ya, xb, yb), (xb - xa) * (yb - ya)
                    self.is_box = self.convex = True
                    return
        pts = _dedupe(pts)
        if signed_area(pts) < 0:
            pts.reverse()
        xs = [p[0] for p in pts] or [0.0]
        ys = [p[1] for p in pts] or [0.0]
        self.pts, self.box, self.is_box = pts, (min(xs), min(ys), max(xs), max(ys)), False
        self.area = abs(signed_area(pts)) if len(pts) >= 3 else 0.0
        self.convex = is_convex(pts)


def intersection_area(a: Shape, b: Shape) -> float:
    """Area common to two simple polygons (convex or not)."""
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    w, h = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if w <= 0 or h <= 0:
        return 0.0
    if a.is_box and b.is_box:
        return w * h
    if len(a.pts) < 3 or len(b.pts) < 3:
        return 0.0
    if not b.convex and a.convex:
        a, b = b, a
    if b.convex:
        return min(abs(signed_area(_clip(a.pts, b.pts))), a.area, b.area)
    # Both concave: B's indicator is the signed sum of its fan triangles', so clipping A by
    # each triangle and summing with the triangle's orientation gives the exact overlap.
    total = 0.0
    p0 = b.pts[0]
    for p1, p2 in pairwise(b.pts[1:]):
        orient = signed_area((p0, p1, p2))
        if orient:
            tri = (p0, p1, p2) if orient > 0 else (p0, p2, p1)
            part = signed_area(_clip(a.pts, tri))
            total += part if orient > 0 else -part
    return min(max(total, 0.0), a.area, b.area)


def shape_iou(a: Shape, b: Shape) -> float:
    """Intersection over union of two shapes; two identical shapes give exactly 1."""
    if a.pts == b.pts:
        return 1.0
    inter = intersection_area(a, b)
    union = a.area + b.area - inter
    return min(inter / union, 1.0) if union > 0 else 0.0


def span_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Overlap over union of two half-open ``[begin, end)`` character spans."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if a == b else 0.0
    return max(inter, 0) / union


def text_span(value: object) -> tuple[int, int]:
    """``[begin, end)`` of an entity annotation (``beginOffset`` plus ``endOffset``, or plus the
    length of ``content``) or of a ``(begin, end)`` pair."""
    if not isinstance(value, dict):
        return int(value[0]), int(value[1])  # type: ignore[index]
    begin = int(value["beginOffset"])
    end = value.get("endOffset")
    if end is None or value.get("beginId") != value.get("endId"):
        # Offsets in two rich-text nodes do not subtract: the content's length does.
        end = begin + len(str(value.get("content") or ""))
    return begin, max(begin, int(end))


def _segment_distance(p: Pt, a: Pt, b: Pt) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    norm = dx * dx + dy * dy
    t = 0.0 if norm == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / norm))
    return math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy)


def _resample(line: Sequence[Pt], count: int = 16) -> list[Pt]:
    lengths = [math.dist(p, q) for p, q in pairwise(line)]
    total = sum(lengths)
    if total == 0:
        return [line[0]]
    out, seg, walked = [], 0, 0.0
    for k in range(count):
        target = total * k / (count - 1)
        while seg < len(lengths) - 1 and walked + lengths[seg] < target:
            walked += lengths[seg]
            seg += 1
        t = 0.0 if lengths[seg] == 0 else min(1.0, (target - walked) / lengths[seg])
        (x0, y0), (x1, y1) = line[seg], line[seg + 1]
        out.append((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    return out


def polyline_distance(a: Sequence[Pt], b: Sequence[Pt]) -> float:
    """Mean distance between two polylines: 16 evenly spaced points of each, their distance to
    the other line, averaged both ways (symmetric; 0 for identical lines)."""
    def one_way(src: Sequence[Pt], dst: Sequence[Pt]) -> float:
        segments = list(pairwise(dst)) or [(dst[0], dst[0])]
        samples = _resample(src)
        return sum(min(_segment_distance(p, s, e) for s, e in segments) for p in samples) / len(samples)
    return (one_way(a, b) + one_way(b, a)) / 2


def overlapping_pairs(boxes_a: Sequence[Box], boxes_b: Sequence[Box]) -> Iterator[tuple[int, int]]:
    """Index pairs whose boxes ``(x0, y0, x1, y1)`` touch, found by a sweep along x rather
    than by testing every pair."""
    if not boxes_a or not boxes_b:
        return
    order = sorted(range(len(boxes_b)), key=lambda j: boxes_b[j][0])
    starts = [boxes_b[j][0] for j in order]
    widest = max(x1 - x0 for x0, _, x1, _ in boxes_b)
    for i, (x0, y0, x1, y1) in enumerate(boxes_a):
        for k in range(bisect_left(starts, x0 - widest), bisect_right(starts, x1)):
            j = order[k]
            _, by0, bx1, by1 = boxes_b[j]
            if bx1 >= x0 and by0 <= y1 and by1 >= y0:
                yield i, j


def _hungarian(cost: list[list[float]]) -> list[int]:
    # Shortest augmenting paths with potentials, O(n^2 m) for n <= m rows; returns each row's
    # column, minimising the total cost. Columns are 1-based inside, 0 being the virtual one.
    n, m = len(cost), len(cost[0])
    rows = [[0.0, *row] for row in cost]
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        minv = [math.inf] * (m + 1)
        free, used = list(range(1, m + 1)), [0]
        while True:
            i0 = owner[j0]
            row, ui0 = rows[i0 - 1], u[i0]
            delta, j1 = math.inf, 0
            for j in free:
                cur = row[j] - ui0 - v[j]
                if cur < minv[j]:
                    minv[j], way[j] = cur, j0
                    if cur < delta:
                        delta, j1 = cur, j
                elif minv[j] < delta:
                    delta, j1 = minv[j], j
            for j in used:
                u[owner[j]] += delta
                v[j] -= delta
            for j in free:
                minv[j] -= delta
            free.remove(j1)
            used.append(j1)
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    column = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            column[owner[j] - 1] = j - 1
    return column


def max_weight_matching(edges: dict[tuple[int, int], float]) -> list[tuple[int, int]]:
    """The pairs ``(i, j)`` maximising the total weight, each index used at most once; only
    positive-weight ``edges`` (keyed by ``(i, j)``) can be paired.

    Exact: the Hungarian algorithm, run separately on each connected group of overlapping
    objects, so 200 boxes that each overlap a few others cost far less than O(n^3)."""
    edges = {pair: w for pair, w in edges.items() if w > 0}
    adjacent: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, j in edges:
        adjacent.setdefault((0, i), []).append((1, j))
        adjacent.setdefault((1, j), []).append((0, i))
    groups: list[tuple[list[int], list[int]]] = []
    seen: set[tuple[int, int]] = set()
    for start in adjacent:
        if start in seen:
            continue
        seen.add(start)
        stack, rows, cols = [start], list[int](), list[int]()
        while stack:  # one connected group of overlapping objects
            node = stack.pop()
            (rows if node[0] == 0 else cols).append(node[1])
            for other in adjacent[node]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        groups.append((sorted(rows), sorted(cols)))
    pairs: list[tuple[int, int]] = []
    for rows, cols in groups:
        if len(rows) == 1 and len(cols) == 1:
            pairs.append((rows[0], cols[0]))
            continue
        flip = len(rows) > len(cols)
        if flip:
            rows, cols = cols, rows
        cost = [[-edges.get((j, i) if flip else (i, j), 0.0) for j in cols] for i in rows]
        for k, c in enumerate(_hungarian(cost)):
            pair = (cols[c], rows[k]) if flip else (rows[k], cols[c])
            if pair in edges:
                pairs.append(pair)
    return sorted(pairs)


def points(values: object) -> list[Pt]:
    """``(x, y)`` pairs from a list of ``{"x", "y"}`` dicts, malformed entries skipped (a
    labeler's broken vertex must not stop the scoring of everything else)."""
    out: list[Pt] = []
    for v in values if isinstance(values, (list, tuple)) else ():
        if isinstance(v, dict) and "x" in v and "y" in v:
            try:
                x, y = float(v["x"]), float(v["y"])
            except (TypeError, ValueError):
                continue
            if x == x and y == y and abs(x) != float("inf") and abs(y) != float("inf"):
                out.append((x, y))
    return out


def vertices(annotation: dict) -> list[Pt]:
    """The vertices of an annotation's first ``boundingPoly`` polygon (normalised ones when
    present)."""
    polygons = annotation.get("boundingPoly")
    first = polygons[0] if isinstance(polygons, list) and polygons else {}
    first = first if isinstance(first, dict) else {}
    return points(first.get("normalizedVertices") or first.get("vertices"))


def to_shape(value: object) -> Shape:
    """A ``Shape`` from an annotation, a list of vertices (dicts or pairs) or an
    ``(x_min, y_min, x_max, y_max)`` box."""
    if isinstance(value, dict):
        return Shape(vertices(value))
    seq = list(value)  # type: ignore[call-overload]
    if len(seq) == 4 and all(isinstance(v, (int, float)) for v in seq):
        x0, y0, x1, y1 = seq
        return Shape([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    return Shape([(v["x"], v["y"]) if isinstance(v, dict) else (v[0], v[1]) for v in seq])


def pad(pts: Sequence[Pt], margin: float) -> Box:
    """The bounding box of ``pts`` grown by ``margin`` on every side."""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin
