"""Checking a plugin's ``requirements.txt``: package requirements only, nothing that reaches
outside the configured package indexes. Read as pip reads it: ``\\`` continues a line, a ``#``
at the start or after whitespace starts a comment, ``--hash`` may follow a requirement."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement

from plugin_runtime.errors import PluginInvalid

_COMMENT = re.compile(r"(^|\s)#.*$")
# Where a requirement's per-line options start: whitespace, then a dash and a letter.
_OPTIONS = re.compile(r"\s+(?=--?[A-Za-z])")
_ALLOWED_OPTIONS = ("--hash",)
# Every archive pip unpacks (pip._internal.utils.filetypes): a requirement ending so is read as
# a file relative to pip's working directory, so a plugin could ship the archive it "requires".
_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz",
             ".tar.lz", ".tar.lzma", ".tar")
_VCS = ("git+", "hg+", "svn+", "bzr+")
# pip replaces ${NAME} anywhere in a requirements file with the variable of the process reading
# it (pip.req.req_file.ENV_VAR_RE): a line would say one thing here and another to pip (and
# could copy the host's proxy credentials into the build log).
_ENV_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+\}")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line number, text)`` of each non-empty logical line, comments removed."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw)
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def split_options(line: str) -> tuple[str, list[str]]:
    """A logical line's requirement and its ``--option`` words."""
    requirement, *options = _OPTIONS.split(line)
    return requirement.strip(), [o.strip() for o in options]


def _refusal(requirement_text: str) -> str | None:
    """Why pip would read this requirement as a path or a URL rather than a package name, or
    None. Checks the text before any marker, as pip splits it, whatever its case."""
    spec = requirement_text.split(";", 1)[0].strip().lower()
    if spec.startswith(_VCS):
        return "is a version-control URL"
    if ":" in spec:  # a scheme (https:, file:), a drive letter (C:) or a URL after "@"
        return "is a URL or a drive letter"
    if "@" in spec:
        return "is a direct reference ('name @ URL')"
    if "/" in spec or "\\" in spec or spec.startswith((".", "~")):
        return "is a path"
    name = re.split(r"[\s\[<>=!~(]", spec, maxsplit=1)[0]
    if spec.endswith(_ARCHIVES) or name.endswith(_ARCHIVES):
        return "is an archive file name"
    return None


#: Requirements a plugin may list: each is looked up on the indexes (a request, and a build in
#: the sandbox when it has no wheel) by builds that run one at a time, so 100,000 lines would
#: hold every later upload for hours. A plugin lists its direct requirements, a handful.
MAX_REQUIREMENTS = 200


def check(text: str, filename: str = "requirements.txt") -> list[Requirement]:
    """Parse each line; raise PluginInvalid naming every line that is not a plain requirement."""
    problems: list[str] = []
    parsed: list[Requirement] = []
    lines = logical_lines(text)
    if len(lines) > MAX_REQUIREMENTS:
        raise PluginInvalid([f"{filename}: {len(lines)} requirements, over the limit of {MAX_REQUIREMENTS}: list the "
                             "packages the plugin imports (pip installs what they depend on)"])
    for number, line in lines:
        where = f"{filename}:{number}"
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            problems.append(
                f"{where}: option {option!r} is not allowed: packages come from the runtime's "
                "configured indexes; list plain requirements such as `requests==2.32.3`"
            )
            continue
        variable = _ENV_VARIABLE.search(line)
        if variable:
            problems.append(f"{where}: {line!r} holds {variable.group()}, which pip replaces with an environment "
                            "variable of the machine that installs it: write the value itself")
            continue
        requirement_text, options = split_options(line)
        for option in options:
            if option.split("=")[0] not in _ALLOWED_OPTIONS:
                problems.append(f"{where}: option {option.split('=')[0]!r} is not allowed (only --hash)")
        refusal = _refusal(requirement_text)
        if refusal:
            problems.append(
                f"{where}: {requirement_text!r} {refusal}, which pip reads as a URL or a path: only "
                "packages from the configured indexes can be installed; name the package (such as "
                "`rules==1.0`) and publish it to an index the runtime uses, or copy its code into the "
                "plugin's folder"
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
