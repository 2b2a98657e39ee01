"""The README's Python quickstart runs (at a tiny size) and its commands match .ci/run."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

TINY = {"n_train=2000": "n_train=64", "n_test=500": "n_test=32", "max_epochs=3": "max_epochs=1",
        '"resnet18"': '"test_resnet"'}


def test_two_setup_commands_open_the_readme_and_ci_runs_the_test_command():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(block) == 2 and block[0].endswith("labelwise train --config quickstart") and block[1].endswith("-m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert block[1] in ci


def test_python_quickstart_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"Python:\n\n```python\n(.*?)```", README, re.S).group(1)
    for big, small in TINY.items():
        assert big in code, f"README quickstart changed: {big!r} not found; update TINY"
        code = code.replace(big, small)
    monkeypatch.chdir(tmp_path)
    code = code.replace("TrainerConfig(", "TrainerConfig(progress=False, tensorboard=False, ", 1)
    exec(compile(code, "README.md", "exec"), {})
    mAP = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= mAP <= 1.0


@pytest.mark.parametrize("doc", re.findall(r"\]\(((?:docs|src/labelwise/configs)/[^)]+)\)", README))
def test_linked_documents_exist(doc):
    assert (ROOT / doc).exists(), f"README links {doc}, which does not exist"
