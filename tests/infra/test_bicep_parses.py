"""Every .bicep file parses (pycep), and main.bicep's modules are all there."""
import pytest

from tests.infra.bicep import BICEP_DIR, MAIN, bicep_files, parse

FILES = bicep_files()


def test_the_template_is_main_plus_small_modules():
    names = {path.relative_to(BICEP_DIR).as_posix() for path in FILES}
    assert "main.bicep" in names
    assert len([n for n in names if n.startswith("modules/")]) >= 8
    for path in FILES:  # STYLE.md: small modules, each read in one go (the app's one lists its settings,
        # four lines each: 33 of them, ~140 lines)
        limit = {"main.bicep": 350, "functionapp.bicep": 375}.get(path.name, 250)
        assert len(path.read_text().splitlines()) <= limit, f"{path.name} wants splitting"


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(BICEP_DIR).as_posix() for p in FILES])
def test_the_file_parses(path):
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), f"{path.name} declares nothing"


def test_every_module_main_uses_exists_and_is_local():
    modules = parse(MAIN)["modules"]
    assert len(modules) >= 8
    for name, module in modules.items():
        assert module["type"] == "local", f"module {name} is not a local file (STYLE.md: checkable offline)"
        assert (BICEP_DIR / module["detail"]["path"]).is_file(), module["detail"]["path"]


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(BICEP_DIR).as_posix() for p in FILES])
def test_every_parameter_says_whether_it_is_required(path):
    for name, param in (parse(path).get("parameters") or {}).items():
        described = [d["argument"] for d in param["decorators"] if d["type"] == "description"]
        assert described and described[0].startswith(("Required.", "Optional.")), f"{path.name}: param {name}"
