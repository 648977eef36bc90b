"""Checking a plugin's ``requirements.txt``: package requirements only, nothing that reaches
outside the configured package indexes."""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement

from plugin_runtime.errors import PluginInvalid

_ALLOWED_OPTIONS = ("--hash",)


def check(text: str, filename: str = "requirements.txt") -> list[Requirement]:
    """Parse each line; raise PluginInvalid naming every line that is not a plain requirement."""
    problems: list[str] = []
    parsed: list[Requirement] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        where = f"{filename}:{number}"
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            problems.append(
                f"{where}: option {option!r} is not allowed: packages come from the runtime's "
                "configured indexes; list plain requirements such as `requests==2.32.3`"
            )
            continue
        requirement_text, *options = line.split(" --")
        for option in options:
            if not option.startswith(tuple(o.lstrip("-") for o in _ALLOWED_OPTIONS)):
                problems.append(f"{where}: option '--{option.split('=')[0]}' is not allowed")
        if "://" in requirement_text or requirement_text.startswith((".", "/", "~")) or "git+" in requirement_text:
            problems.append(
                f"{where}: {requirement_text!r} points at a URL or a path: only packages from "
                "the configured indexes can be installed"
            )
            continue
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement as error:
            problems.append(f"{where}: {requirement_text!r} is not a valid requirement: {error}")
            continue
        if requirement.url:
            problems.append(f"{where}: direct references ('@ URL') are not allowed")
            continue
        parsed.append(requirement)
    if problems:
        raise PluginInvalid(problems)
    return parsed
