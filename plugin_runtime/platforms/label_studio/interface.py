"""A Label Studio labeling config (XML) as Kili's ``jsonInterface``, and the controls the label
mappings need (``labels``): each control's tag and the object it labels.

Pure. The config is parsed with the standard library's parser after refusing any DOCTYPE: no
entity of any kind (internal ones are the "billion laughs"; external ones the stdlib never
fetches, but nothing here needs them either).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any

from plugin_runtime.errors import PlatformRefused

#: Label Studio control tags and the Kili ML task each becomes.
ML_TASKS = {
    "choices": "CLASSIFICATION",
    "textarea": "TRANSCRIPTION",
    "rectanglelabels": "OBJECT_DETECTION",
    "rectangle": "OBJECT_DETECTION",
    "polygonlabels": "OBJECT_DETECTION",
    "polygon": "OBJECT_DETECTION",
    "labels": "NAMED_ENTITIES_RECOGNITION",
}
_TOOLS = {"rectanglelabels": "rectangle", "rectangle": "rectangle", "polygonlabels": "polygon", "polygon": "polygon"}
#: Tags whose children (``Choice``, ``Label``) are the categories.
_WITH_CATEGORIES = {"choices", "rectanglelabels", "polygonlabels", "labels"}
_OBJECT_TAGS = {"image", "text", "hypertext", "audio", "video", "paragraphs", "table", "timeseries", "pdf"}


@dataclass(frozen=True)
class Control:
    """One control of the labeling config."""

    name: str
    #: Its tag in lower case: choices, textarea, rectanglelabels, ...
    tag: str
    #: The object it labels (``toName``).
    to_name: str
    categories: tuple[str, ...] = ()
    multiple: bool = False
    required: bool = False


@dataclass(frozen=True)
class Config:
    """The controls of a labeling config, by name, and the objects they label, by name (tag)."""

    controls: dict[str, Control] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)


def parse(xml: str) -> Config:
    """The controls and objects of a labeling config; PlatformRefused when it is not XML."""
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise PlatformRefused("the labeling config declares a DOCTYPE or entities, which the runtime does not read")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise PlatformRefused(f"the labeling config is not valid XML ({error})") from None
    controls: dict[str, Control] = {}
    objects: dict[str, str] = {}
    for element in root.iter():
        tag = str(element.tag).lower()
        name = element.get("name")
        if not name:
            continue
        if tag in _OBJECT_TAGS:
            objects[name] = tag
        elif element.get("toName") is not None:
            categories = tuple(_category(child) for child in element.iter() if child is not element
                               and str(child.tag).lower() in ("choice", "label")) if tag in _WITH_CATEGORIES else ()
            controls[name] = Control(
                name=name, tag=tag, to_name=str(element.get("toName")).split(",")[0], categories=categories,
                multiple=tag != "choices" or element.get("choice", "single") == "multiple",
                required=element.get("required", "false").lower() == "true")
    return Config(controls, objects)


def _category(element: ElementTree.Element) -> str:
    # A result holds a choice's alias when it has one, else its value.
    return str(element.get("alias") or element.get("value") or "")


def json_interface(config: Config) -> dict[str, Any]:
    """Kili's ``jsonInterface`` of the controls it has an ML task for (the others' results
    reach plugins raw, under ``labelStudio``)."""
    jobs: dict[str, Any] = {}
    for control in config.controls.values():
        task = ML_TASKS.get(control.tag)
        if task is None:
            continue
        content: dict[str, Any] = {"input": _input(control)}
        if control.tag in _WITH_CATEGORIES:
            content["categories"] = {value: {"name": value, "children": []} for value in control.categories}
        job: dict[str, Any] = {"mlTask": task, "content": content, "required": int(control.required),
                               "instruction": control.name, "isChild": False, "isVisible": True}
        if control.tag in _TOOLS:
            job["tools"] = [_TOOLS[control.tag]]
        jobs[control.name] = job
    return {"jobs": jobs}


def _input(control: Control) -> str:
    if control.tag == "choices":
        return "checkbox" if control.multiple else "radio"
    if control.tag == "textarea":
        return "textField"
    return "radio"
