"""Where generated files go: $FKD_HOME, else the project folder in a clone, else the user's
data folder (an installed copy never writes inside site-packages)."""
from pathlib import Path

from fkd_utils import paths


def test_fkd_home_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    assert paths.home() == tmp_path.resolve()
    assert paths.results_dir("quick") == tmp_path.resolve() / "results" / "quick"


def test_a_clone_keeps_its_files_in_the_project(monkeypatch):
    monkeypatch.delenv("FKD_HOME", raising=False)
    assert paths.in_clone()  # the tests run from a clone
    assert paths.home() == paths.PROJECT_ROOT


def test_an_installed_copy_uses_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("FKD_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "site-packages")
    assert not paths.in_clone()
    assert paths.home() == (tmp_path / "data" / "fkd").resolve()
    assert Path(paths.PACKAGE_DIR) not in paths.home().parents
