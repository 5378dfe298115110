"""Repository hygiene: CI runs exactly the README's test command."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("```bash")
    return lines[start + 1 : start + 3]


def test_ci_runs_the_readme_test_command() -> None:
    test_cmd = _readme_commands()[1]
    ci_lines = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln.strip()]
    assert ci_lines[-1] == test_cmd


def test_readme_main_command_uses_sample_data() -> None:
    main_cmd = _readme_commands()[0]
    assert "sample_data/" in main_cmd
    assert main_cmd.startswith("python3.11 -m venv")


def test_torch_is_pinned_to_the_local_cpu_build() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in text
