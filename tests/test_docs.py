"""The documentation: every public name is in the API reference with a docstring that says
what it takes and returns, and the site's pages link to pages that exist.

The code examples in the pages and docstrings run in ``test_doc_examples.py``; the site itself
is built strictly (``mkdocs build --strict``) by CI.
"""

import inspect
import re
import types
from pathlib import Path

import griffe
import pytest

import kirchhoff as kh
import kirchhoff.plot as kplot

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

EXPORTED = sorted(
    n for n in dir(kh) if not n.startswith("_") and not isinstance(getattr(kh, n), types.ModuleType)
)
PLOTTED = sorted(
    n
    for n in dir(kplot)
    if not n.startswith("_") and getattr(getattr(kplot, n), "__module__", None) == kplot.__name__
)


def _griffe_package():
    return griffe.load("kirchhoff", search_paths=[str(ROOT)], resolve_aliases=True)


@pytest.fixture(scope="module")
def package():
    return _griffe_package()


def _api_directives():
    found = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        for name in re.findall(r"^::: (kirchhoff(?:\.\w+)*)\s*$", page.read_text(), re.M):
            found.setdefault(name, []).append(page.name)
    return found


def test_every_exported_name_is_in_the_api_reference_once():
    found = _api_directives()
    missing = [n for n in EXPORTED if f"kirchhoff.{n}" not in found]
    twice = {n: p for n, p in found.items() if len(p) > 1}
    unknown = [
        n for n in found if n != "kirchhoff.plot" and not hasattr(kh, n.removeprefix("kirchhoff."))
    ]
    assert not missing, f"exported but not in docs/api: {missing}"
    assert not twice, f"documented on more than one page: {twice}"
    assert not unknown, f"docs/api documents names kirchhoff does not export: {unknown}"
    assert "kirchhoff.plot" in found  # the whole module, every public function with it


def _sections(obj):
    """The parsed Google-style sections of a griffe object's docstring, by kind."""
    if obj.docstring is None:
        return None
    out = {}
    for section in obj.docstring.parse("google", warn_missing_types=False):
        out.setdefault(section.kind.value, []).append(section)
    return out


def _documented_names(sections, *kinds):
    return {item.name for kind in kinds for s in sections.get(kind, []) for item in s.value}


def _signature_parameters(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _problems(name, runtime, gobj):
    """What the docstring of one public name lacks, as a list of sentences (empty: fine)."""
    sections = _sections(gobj)
    if sections is None or not gobj.docstring.value.strip():
        return [f"{name}: no docstring"]
    problems = []
    if isinstance(runtime, type) and issubclass(runtime, BaseException):
        return problems  # an error's docstring says when it is raised
    if inspect.isclass(runtime) or inspect.isfunction(runtime):
        params = _signature_parameters(runtime)
        documented = _documented_names(sections, "parameters", "attributes", "other parameters")
        lacking = [p for p in params if p not in documented]
        if lacking:
            problems.append(f"{name}: arguments not in Args/Attributes: {lacking}")
        stray = sorted(_documented_names(sections, "parameters") - set(params))
        if stray:
            problems.append(f"{name}: Args documents what the signature lacks: {stray}")
    if inspect.isfunction(runtime):
        returns = inspect.signature(runtime).return_annotation
        if returns is not None and not ({"returns", "yields"} & set(sections)):
            problems.append(f"{name}: no Returns (or Yields) section")
    return problems


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_name_documents_what_it_takes_and_returns(package, name):
    problems = _problems(name, getattr(kh, name), package[name])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", PLOTTED)
def test_plot_function_documents_what_it_takes_and_returns(package, name):
    problems = _problems(f"plot.{name}", getattr(kplot, name), package["plot"][name])
    assert not problems, "\n".join(problems)


def _public_methods():
    for name in EXPORTED:
        cls = getattr(kh, name)
        if not inspect.isclass(cls) or issubclass(cls, BaseException):
            continue
        for attr, value in vars(cls).items():
            if attr.startswith("_") or not (
                inspect.isfunction(value) or isinstance(value, (property, classmethod))
            ):
                continue
            yield f"{name}.{attr}"


@pytest.mark.parametrize("qualname", sorted(set(_public_methods())))
def test_public_method_has_a_docstring(package, qualname):
    cls, attr = qualname.split(".")
    member = package[cls].members.get(attr)
    assert member is not None and member.docstring is not None and member.docstring.value.strip(), (
        f"{qualname} has no docstring"
    )


def test_site_navigation_lists_every_page_and_every_page_exists():
    config = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s+([\w/.-]+\.(?:md|ipynb))\s*$", config, re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "hooks" not in p.parts} | {
        f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")
    }
    assert listed == pages, (sorted(pages - listed), sorted(listed - pages))
