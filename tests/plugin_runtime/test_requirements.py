"""A plugin's requirements.txt: plain requirements from the configured indexes only."""

from __future__ import annotations

import pytest

from plugin_runtime.errors import PluginInvalid
from plugin_runtime.requirements import check


def refused(text: str) -> list[str]:
    with pytest.raises(PluginInvalid) as raised:
        check(text)
    return raised.value.problems


def test_plain_requirements_are_parsed_skipping_comments_and_blank_lines() -> None:
    text = """# runtime deps
requests==2.32.3

numpy>=1.26,<3  # arrays
pydantic[email]>=2; python_version >= "3.10"
   shapely
"""
    assert [str(r) for r in check(text)] == [
        "requests==2.32.3", "numpy<3,>=1.26", 'pydantic[email]>=2; python_version >= "3.10"', "shapely"]


def test_an_empty_file_has_no_requirements() -> None:
    assert check("") == [] and check("# nothing\n\n") == []


def test_hashes_are_allowed() -> None:
    [requirement] = check("requests==2.32.3 --hash=sha256:abcdef --hash=sha256:012345\n")
    assert requirement.name == "requests" and str(requirement.specifier) == "==2.32.3"


def test_hashes_on_continuation_lines_are_allowed() -> None:
    text = "requests==2.32.3 \\\n    --hash=sha256:abcdef \\\n    --hash=sha256:012345\n"
    assert [r.name for r in check(text)] == ["requests"]


def test_a_comment_after_a_tab_is_a_comment() -> None:
    assert [r.name for r in check("requests==2.32.3\t# pinned\n")] == ["requests"]


@pytest.mark.parametrize(("line", "option"), [
    ("-e git+https://github.com/acme/rules.git#egg=rules", "-e"),
    ("--editable ./rules", "--editable"),
    ("--index-url https://evil.example/simple", "--index-url"),
    ("--extra-index-url=https://evil.example/simple", "--extra-index-url"),
    ("-i https://evil.example/simple", "-i"),
    ("-r other.txt", "-r"),
    ("-c constraints.txt", "-c"),
    ("--find-links /tmp/wheels", "--find-links"),
    ("--trusted-host evil.example", "--trusted-host"),
])
def test_options_are_refused_by_line(line: str, option: str) -> None:
    assert refused(f"requests==2.32.3\n{line}\n") == [
        f"requirements.txt:2: option {option!r} is not allowed: packages come from the runtime's configured "
        "indexes; list plain requirements such as `requests==2.32.3`"]


def test_options_after_a_requirement_other_than_hash_are_refused() -> None:
    assert refused("requests==2.32.3 --global-option=--x\n") == [
        "requirements.txt:1: option '--global-option' is not allowed (only --hash)"]


@pytest.mark.parametrize("line", [
    "https://files.example/rules-1.0-py3-none-any.whl",
    "git+https://github.com/acme/rules.git",
    "./vendor/rules",
    "../rules",
    "/opt/wheels/rules.whl",
    "~/rules",
    "rules @ https://files.example/rules.whl",
    "rules @ file:///opt/rules",
])
def test_urls_and_local_paths_are_refused(line: str) -> None:
    [problem] = refused(f"# deps\n{line}\n")
    assert problem.startswith("requirements.txt:2: ")
    assert "only packages from the configured indexes can be installed" in problem or "direct references" in problem


@pytest.mark.parametrize("line", ["requests=>2", "not a requirement", "requests[", "==1.0", "requests>="])
def test_invalid_syntax_is_refused_with_the_reason(line: str) -> None:
    [problem] = refused(f"ok==1\n\n{line}\n")
    assert problem.startswith(f"requirements.txt:3: {line!r} is not a valid requirement: ")


def test_every_bad_line_is_reported_at_once_with_the_file_name() -> None:
    found = refused("-r base.txt\nrequests\nhttps://x.example/a.whl\nbad=>1\n")
    assert [p.split(":")[1] for p in found] == ["1", "3", "4"]
    with pytest.raises(PluginInvalid, match="dev.txt:1: option '-r'"):
        check("-r base.txt\n", filename="dev.txt")


@pytest.mark.parametrize(("line", "why"), [
    ("evil-1.0.tar.gz", "is an archive file name"),
    ("EVIL-1.0.TAR.GZ", "is an archive file name"),
    ("evil-1.0-py3-none-any.whl", "is an archive file name"),
    ("evil.zip", "is an archive file name"),
    ("evil.Zip ; python_version >= '3'", "is an archive file name"),
    ("evil.tgz", "is an archive file name"),
    ("evil-1.0.tar.bz2", "is an archive file name"),
    ("evil-1.0.tar.xz", "is an archive file name"),
    ("evil-1.0.tar", "is an archive file name"),
    ("vendor/evil", "is a path"),
    ("vendor\\evil", "is a path"),
    (".evil", "is a path"),
    ("~evil", "is a path"),
    ("C:evil", "is a URL or a drive letter"),
    ("c:\\wheels\\evil.whl", "is a URL or a drive letter"),
    ("file:evil-1.0.tar.gz", "is a URL or a drive letter"),
    ("FILE:///opt/evil", "is a URL or a drive letter"),
    ("http:evil", "is a URL or a drive letter"),
    ("evil@https://x.example/evil.whl", "is a URL or a drive letter"),
    ("evil @ ./evil", "is a direct reference ('name @ URL')"),
    ("Git+https://x.example/evil.git", "is a version-control URL"),
    ("hg+https://x.example/evil", "is a version-control URL"),
    ("svn+ssh://x.example/evil", "is a version-control URL"),
    ("bzr+lp:evil", "is a version-control URL"),
])
def test_whatever_pip_reads_as_a_path_or_url_is_refused_naming_the_line_and_the_fix(line: str, why: str) -> None:
    [problem] = refused(f"requests==2.32.3\n{line}\n")
    assert problem == (
        f"requirements.txt:2: {line!r} {why}, which pip reads as a URL or a path: only packages from the "
        "configured indexes can be installed; "
        "name the package (such as `rules==1.0`) and publish it to an index the runtime uses, or copy its code "
        "into the plugin's folder")


@pytest.mark.parametrize("line", [
    "requests~=2.32", "zope.interface>=6", "backports.zoneinfo; python_version < '3.9'", "ruamel.yaml==0.18.6",
    "pydantic[email]>=2", "Django>=5,!=5.0.1", "package.tar-utils==1.0",
])
def test_dotted_names_and_every_specifier_still_pass(line: str) -> None:
    [requirement] = check(line + "\n")
    assert requirement.name == line.split(";")[0].split("[")[0].split("=")[0].split("~")[0].split(">")[0].strip()
