"""Project files agree with each other: environment.yml vs pyproject, README vs notebooks,
notebooks committed without outputs and with the house skeleton."""
import json
import re
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
