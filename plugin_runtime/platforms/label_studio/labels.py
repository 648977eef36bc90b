"""Label Studio results <-> Kili's ``jsonResponse``, both ways. Pure.

To Kili (``json_response``), one entry per control that has a result, keyed by its name:
``choices`` -> ``categories``; ``textarea`` -> ``text`` (entries joined by a newline);
``rectanglelabels``/``rectangle`` and ``polygonlabels``/``polygon`` -> ``annotations`` with a
``boundingPoly`` in 0..1 (a rectangle's corners in Kili's order: bottom-left, top-left,
top-right, bottom-right, y growing downwards as in the image); ``labels`` on text ->
``annotations`` with ``beginOffset``, ``endOffset`` and ``content``; any other control ->
``{"labelStudio": [its raw result items]}``; items of no control (relations) go under the
top-level key ``labelStudio``, so nothing is hidden.

Back to Label Studio (``results``), for the predictions and annotations plugins append: the
same shapes, read with the project's controls (``interface.Config``) to name the object each
labels; a rotated rectangle comes back as its axis-aligned bounding box.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

from plugin_runtime.platforms.label_studio.interface import Config

#: The key of raw Label Studio result items, in a control's entry or at the top level.
RAW = "labelStudio"
_REGION_TYPES = {"rectanglelabels": "rectangle", "rectangle": "rectangle", "polygonlabels": "polygon",
                 "polygon": "polygon"}


def json_response(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Kili's ``jsonResponse`` of a Label Studio annotation's (or prediction's) results."""
    out: dict[str, Any] = {}
    for item in results:
        if not isinstance(item, dict):
            continue
        name, kind, value = item.get("from_name"), str(item.get("type") or "").lower(), item.get("value")
        if not isinstance(name, str) or not isinstance(value, dict):
            out.setdefault(RAW, []).append(item)
            continue
        entry = out.setdefault(name, {})
        mapped = _mapped(kind, item, value)
        if mapped is None:
            entry.setdefault(RAW, []).append(item)
            continue
        key, part = mapped
        if key == "categories":
            entry.setdefault("categories", []).extend(part)
        elif key == "text":
            entry["text"] = "\n".join(t for t in (entry.get("text"), part) if t is not None)
        else:
            entry.setdefault("annotations", []).append(part)
    return out


def _mapped(kind: str, item: dict[str, Any], value: dict[str, Any]) -> tuple[str, Any] | None:
    """(the jsonResponse key, what one result item adds to it), or None: kept raw."""
    if kind == "choices" and _strings(value.get("choices")):
        return "categories", [{"name": name} for name in value["choices"]]
    if kind == "textarea" and _strings(value.get("text")):
        return "text", "\n".join(value["text"])
    if kind in _REGION_TYPES:
        vertices = _rectangle(item, value) if _REGION_TYPES[kind] == "rectangle" else _polygon(value)
        if vertices is None:
            return None
        return "annotations", {"mid": str(item.get("id") or ""), "type": _REGION_TYPES[kind],
                               "categories": _categories(value.get(kind)),
                               "boundingPoly": [{"normalizedVertices": vertices}]}
    if kind == "labels" and isinstance(value.get("start"), int) and isinstance(value.get("end"), int):
        return "annotations", {"mid": str(item.get("id") or ""), "categories": _categories(value.get("labels")),
                               "beginOffset": value["start"], "endOffset": value["end"],
                               "content": str(value.get("text") or "")}
    return None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _categories(names: Any) -> list[dict[str, str]]:
    return [{"name": name} for name in names] if _strings(names) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rectangle(item: dict[str, Any], value: dict[str, Any]) -> list[dict[str, float]] | None:
    x, y, w, h = (_number(value.get(k)) for k in ("x", "y", "width", "height"))
    if x is None or y is None or w is None or h is None:
        return None
    # Label Studio: percentages of the image, the box turned by ``rotation`` degrees clockwise
    # around its top-left corner, in pixels (so the image's size matters when it is not square).
    corners = [(0.0, h), (0.0, 0.0), (w, 0.0), (w, h)]  # bottom-left, top-left, top-right, bottom-right
    angle = math.radians(_number(value.get("rotation")) or 0.0)
    sx, sy = _number(item.get("original_width")) or 1.0, _number(item.get("original_height")) or 1.0
    out = []
    for dx, dy in corners:
        px, py = dx * sx, dy * sy
        rx, ry = px * math.cos(angle) - py * math.sin(angle), px * math.sin(angle) + py * math.cos(angle)
        out.append({"x": _unit(x + rx / sx), "y": _unit(y + ry / sy)})
    return out


def _polygon(value: dict[str, Any]) -> list[dict[str, float]] | None:
    points = value.get("points")
    if not isinstance(points, list):
        return None
    out = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2) or None in (px := [_number(c) for c in point]):
            return None
        out.append({"x": _unit(px[0]), "y": _unit(px[1])})  # type: ignore[arg-type]
    return out


def _unit(percent: float) -> float:
    return round(percent / 100.0, 10)


def _percent(unit: Any) -> float:
    return round(float(unit) * 100.0, 8)


# Back to Label Studio ------------------------------------------------------------------


def results(response: dict[str, Any], config: Config, seed: str = "") -> list[dict[str, Any]]:
    """Label Studio results of a Kili ``jsonResponse`` for a project with ``config``'s
    controls; result ids come from ``seed`` (a region's ``mid`` when it has one), so the same
    response written twice has the same ids. Entries naming no control of the project, or in
    a shape the control does not take, are left out (``unmapped`` names them)."""
    out: list[dict[str, Any]] = []
    for name, entry in response.items():
        control = config.controls.get(name)
        if name == RAW and control is None:
            out += [item for item in entry if isinstance(item, dict)] if isinstance(entry, list) else []
            continue
        if control is None or not isinstance(entry, dict):
            continue
        out += [item for item in entry.get(RAW) or [] if isinstance(item, dict)]
        base = {"from_name": name, "to_name": control.to_name}
        if control.tag == "choices" and entry.get("categories"):
            out.append({**base, "id": _id(seed, name), "type": "choices",
                        "value": {"choices": [str(c.get("name")) for c in entry["categories"] if isinstance(c, dict)]}})
        elif control.tag == "textarea" and isinstance(entry.get("text"), str):
            out.append({**base, "id": _id(seed, name), "type": "textarea", "value": {"text": [entry["text"]]}})
        for number, annotation in enumerate(entry.get("annotations") or []):
            region = _region(control.tag, annotation) if isinstance(annotation, dict) else None
            if region is not None:
                mid = annotation.get("mid")
                out.append({**base, "id": str(mid) if mid else _id(seed, f"{name}.{number}"), "type": control.tag,
                            "value": region})
    return out


def unmapped(response: dict[str, Any], config: Config) -> list[str]:
    """The entries of ``response`` that name no control of the project."""
    return [name for name in response if name != RAW and name not in config.controls]


def _id(seed: str, name: str) -> str:
    # Label Studio's own result ids are 10 characters.
    return hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest()[:10]


def _region(tag: str, annotation: dict[str, Any]) -> dict[str, Any] | None:
    names = [str(c.get("name")) for c in annotation.get("categories") or [] if isinstance(c, dict)]
    if tag == "labels":
        begin, end = annotation.get("beginOffset"), annotation.get("endOffset")
        if not isinstance(begin, int) or not isinstance(end, int):
            return None
        return {"start": begin, "end": end, "text": str(annotation.get("content") or ""), "labels": names}
    if tag not in _REGION_TYPES:
        return None
    polys = annotation.get("boundingPoly") or []
    vertices = polys[0].get("normalizedVertices") if polys and isinstance(polys[0], dict) else None
    if not isinstance(vertices, list) or not vertices:
        return None
    try:
        xs = [float(v["x"]) for v in vertices]
        ys = [float(v["y"]) for v in vertices]
    except (KeyError, TypeError, ValueError):
        return None
    if _REGION_TYPES[tag] == "polygon":
        region: dict[str, Any] = {"points": [[_percent(x), _percent(y)] for x, y in zip(xs, ys)]}
    else:
        region = {"x": _percent(min(xs)), "y": _percent(min(ys)), "width": _percent(max(xs) - min(xs)),
                  "height": _percent(max(ys) - min(ys)), "rotation": 0}
    if tag.endswith("labels"):
        region[tag] = names
    return region
