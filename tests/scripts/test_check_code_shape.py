"""The project's shape rules, checked on the source (issue 14's "Done when"): no function in
``src/`` over 60 lines, none in the CLI (``cli.py`` or the ``cli`` package) with a body over 25 (it only parses and prints), and the scene
coding functions are called only by the pipelines (every entry point encodes and decodes through
:mod:`cosmic.pipelines`). ``scripts/check_code_shape.py`` prints the same findings."""

from __future__ import annotations

import pytest
from helpers import REPO, load_script

ROOT = REPO
shape = load_script(ROOT / "scripts" / "check_code_shape.py")


def test_no_function_in_src_is_too_long():
    assert shape.long_functions(ROOT / "src" / "cosmic") == []


def test_scene_coding_is_called_only_by_the_pipelines():
    assert shape.pipeline_bypasses(ROOT / "src" / "cosmic") == []


@pytest.mark.parametrize("folder", ["scripts", "benchmarks"])
def test_scripts_and_benchmarks_follow_the_same_rules(folder):
    """Issue 32 item 7: the entry points beside the package are held to the package's rules."""
    assert shape.long_functions(ROOT / folder) == []
    assert shape.pipeline_bypasses(ROOT / folder) == []


def test_the_test_tree_mirrors_the_source_tree():
    assert shape.unmirrored_tests(ROOT / "tests", ROOT / "src" / "cosmic") == []


def test_the_checker_finds_a_misplaced_test(tmp_path):
    (tmp_path / "src" / "cosmic" / "io").mkdir(parents=True)
    (tmp_path / "src" / "cosmic" / "io" / "__init__.py").write_text("")
    (tmp_path / "src" / "cosmic" / "cli.py").write_text("")
    for name in ("io/test_container.py", "test_cli.py", "test_api.py", "ground/test_x.py", "test_nothing.py"):
        (tmp_path / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tests" / name).write_text("")
    found = shape.unmirrored_tests(tmp_path / "tests", tmp_path / "src" / "cosmic")
    assert [p.relative_to(tmp_path / "tests").as_posix() for p in found] == ["ground/test_x.py", "test_nothing.py"]


def test_the_checker_finds_a_long_function_and_a_bypass(tmp_path):
    """The checks can fail: a 61-line function, a CLI command of 26 body lines (in ``cli.py`` or in
    the ``cli`` package; a long signature alone is fine there) and a direct
    ``encode_tiles`` call in an entry point are all reported."""
    pkg = tmp_path / "cosmic"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    (pkg / "long.py").write_text(f"def f():\n{body}\n    return 0\n")  # 61 lines
    (pkg / "cli.py").write_text("def cmd():\n" + "\n".join(f"    y{i} = {i}" for i in range(26)) + "\n")
    (pkg / "cli").mkdir()
    signature = "def options(\n" + "".join(f"    a{i}: int = {i},\n" for i in range(40)) + ") -> None:\n"
    (pkg / "cli" / "codec.py").write_text(signature + '    """Doc."""\n' + "".join(f"    b{i} = {i}\n" for i in range(15))
                                          + "\n\ndef command():\n" + "".join(f"    c{i} = {i}\n" for i in range(26)))
    (pkg / "demo.py").write_text("from cosmic.onboard.scene import encode_tiles\n\n\ndef run(c, x):\n"
                                 "    return encode_tiles(c, x)\n")
    assert sorted(name for _, name, _ in shape.long_functions(pkg)) == ["cmd", "command", "f"]
    assert [(p.name, call) for p, call, _ in shape.pipeline_bypasses(pkg)] == [("demo.py", "encode_tiles")]


def test_packages_import_each_other_without_a_circle():
    """Issue 32: no import circle between cosmic's packages (imports inside functions included)."""
    assert shape.import_cycles(ROOT / "src" / "cosmic") == []


def test_no_private_name_is_imported_across_packages():
    assert shape.private_imports(ROOT / "src" / "cosmic") == []


def test_the_checker_finds_an_import_circle_and_a_private_import(tmp_path):
    pkg = tmp_path / "cosmic"
    for sub in ("io", "ground", "utils"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "io" / "a.py").write_text("from cosmic.utils import x\n\n\ndef f():\n    from cosmic.ground.b import _g\n")
    (pkg / "ground" / "b.py").write_text("import cosmic.io.a\n")
    assert shape.import_cycles(pkg) == [["ground", "io"]]
    assert shape.private_imports(pkg) == [("cosmic.io.a", "cosmic.ground.b", "_g")]
