"""Project files agree with each other: environment.yml vs pyproject, README vs notebooks,
notebooks committed without outputs and with the house skeleton."""
import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _name(requirement):
    return re.split(r"[<>=!\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("notebooks", "dev", "peers", "gpu"):
        wanted |= set(project["optional-dependencies"][extra])
    env_lines = [ln.strip()[2:].strip() for ln in (ROOT / "environment.yml").read_text().splitlines()
                 if ln.strip().startswith("- ") and not ln.strip().startswith("- -e")]
    listed = {ln for ln in env_lines if not ln.startswith(("python", "pip", "conda-forge"))} | \
             {ln for ln in env_lines if ln.startswith("pillow")}
    # whole requirement strings: jax[cpu] (dev) and jax[cuda12] (gpu) share a name
    assert sorted(wanted) == sorted(listed)


@pytest.mark.slow
def test_gpu_extra_resolves_to_one_tensorflow_and_a_cuda_runtime(tmp_path):
    """What pip would install into an empty environment for ``.[gpu]`` (a dry run; needs the
    package index, so it skips without one)."""
    import subprocess
    import sys
    report = tmp_path / "report.json"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                          "--ignore-installed", "--report", str(report), f"{ROOT}[gpu]"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode and re.search(r"connection|resolve host|network|No matching distribution|"
                                    r"Could not find a version", out.stderr, re.I):
        pytest.skip(f"no package index reachable: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0, out.stderr[-2000:]
    names = {i["metadata"]["name"].lower().replace("_", "-")
             for i in json.loads(report.read_text())["install"]}
    assert {n for n in names if n.startswith("tensorflow")} == {"tensorflow-cpu"}
    assert {"jax-cuda12-plugin", "nvidia-cuda-runtime-cu12", "keras"} <= names


def test_notebooks_exist_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_skeleton(path):
    cells = json.loads(path.read_text())["cells"]
    text = lambda c: "".join(c["source"])
    assert text(cells[0]).startswith(f"# {path.name[:2]} ")
    headings = [text(c).splitlines()[0] for c in cells if c["cell_type"] == "markdown"]
    assert "## Setup" in headings and headings[-1].startswith("## Summary")
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    for name in ("profile", "data_dir", "seed"):
        assert re.search(rf"^{name} = .*#", text(params[0]), re.M), f"{path.name}: {name} with a comment"
    # every code cell follows a sentence saying what it does
    for before, cell in zip(cells, cells[1:]):
        if cell["cell_type"] == "code" and "parameters" not in cell.get("metadata", {}).get("tags", []):
            assert before["cell_type"] == "markdown", f"{path.name}: code cell without an explanation"


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"notebooks/(\d\d_[a-z0-9_]+\.ipynb)", readme))
    assert listed == {p.name for p in NOTEBOOKS}


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make reproduce" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _package_imports():
    """``{module: {fkd_utils modules it imports}}``, every import statement (also those inside
    functions) read with ast, so no import circle hides behind a lazy import."""
    package = ROOT / "fkd_utils"
    graph = {}
    for path in package.glob("*.py"):
        name = path.stem
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    graph[name].add(node.module.split(".")[0])
                else:  # from . import a, b
                    graph[name] |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fkd_utils."):
                graph[name].add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name.split(".")[1] for a in node.names
                                if a.name.startswith("fkd_utils.")}
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def _cycle(graph):
    """One import circle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_between_the_package_modules():
    graph = _package_imports()
    assert {"landmarker", "pipeline", "weights_io"} <= set(graph)
    assert "pipeline" in graph["landmarker"]  # the graph sees real imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def _files_under(folder):
    return {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()}


@pytest.mark.slow
def test_the_wheel_installs_a_working_landmarker_outside_the_clone(tmp_path):
    """What a user does: build the wheel, install it (not editable) into a fresh virtualenv,
    then from an unrelated folder `fkd --version` and `fkd predict photo.jpg` with the shipped
    weights, writing nothing inside site-packages. The heavy dependencies (TensorFlow, ...)
    come from this test's environment through a .pth line instead of a reinstall."""
    import sysconfig
    from skimage import data as skdata
    from skimage.io import imsave
    run = lambda cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kw)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                 str(ROOT)])
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, = (tmp_path / "dist").glob("fkd-*.whl")
    assert wheel.stat().st_size > 20e6, "the shipped weights are missing from the wheel"
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                       ).stdout.strip())
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                     "-q", str(wheel)])
    assert installed.returncode == 0, installed.stderr[-3000:]
    (purelib / "_fkd_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    before = _files_under(purelib)
    assert "fkd_utils/weights/real/manifest.json" in before
    user = tmp_path / "user"
    work = tmp_path / "elsewhere"
    work.mkdir()
    imsave(work / "photo.jpg", skdata.astronaut())
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(user),
           "XDG_DATA_HOME": str(user / "data"), "XDG_CACHE_HOME": str(user / "cache"),
           "XDG_CONFIG_HOME": str(user / "config")}
    version = run([str(venv / "bin" / "fkd"), "--version"], cwd=work, env=env)
    assert version.returncode == 0 and version.stdout.strip() == f"fkd {_project()['version']}"
    predicted = run([str(venv / "bin" / "fkd"), "predict", "photo.jpg"], cwd=work, env=env)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert re.match(r"1 images, [1-9]\d* faces", predicted.stdout), predicted.stdout
    assert (work / "fkd-predictions" / "photo.jpg.fkd.json").is_file()
    reproduced = run([str(venv / "bin" / "fkd"), "reproduce"], cwd=work, env=env)
    assert reproduced.returncode == 2 and "clone" in reproduced.stderr, reproduced.stderr[-3000:]
    assert not (user / "data" / "fkd" / "data").exists(), "fkd reproduce generated data first"
    where = run([str(python), "-c", "import fkd_utils; print(fkd_utils.__file__)"], cwd=work, env=env)
    assert where.stdout.startswith(str(purelib)), "the test ran the clone, not the wheel"
    assert _files_under(purelib) == before, "fkd wrote inside site-packages"


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_file_matches_pyproject():
    project = _project()
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert "setuptools>=77" in build  # the first setuptools that reads an SPDX license string
