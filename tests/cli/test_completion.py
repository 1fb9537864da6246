"""Shell completion (issue 19 #25): ``oaws completion bash|zsh|fish`` prints the script,
``oaws --install-completion`` installs it, and the script's requests are answered."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_of_each_shell(run, shell):
    code, out, err = run("completion", shell)
    assert code == 0, err
    assert "oaws" in out and "_OAWS_COMPLETE" in out and out.strip()


def test_a_shell_without_completion_is_a_usage_error(run):
    code, out, err = run("completion", "tcsh")
    assert code == 2 and out == ""
    assert err == "oaws: no completion for 'tcsh'; use one of bash, zsh, fish\n"


@pytest.mark.parametrize(
    ("shell", "script", "rc", "line"),
    [
        ("bash", ".bash_completions/oaws.sh", ".bashrc", "source "),
        ("zsh", ".zfunc/_oaws", ".zshrc", "fpath+=~/.zfunc"),
    ],
)
def test_install_completion_writes_the_script_and_the_rc_line(run, tmp_path, monkeypatch, shell, script, rc, line):
    monkeypatch.setenv("HOME", str(tmp_path))
    # the shell named on the command line, not detected from the processes above pytest
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    code, out, err = run("--install-completion", shell)
    assert code == 0, err
    assert f"{shell} completion installed" in out
    assert "_OAWS_COMPLETE" in (tmp_path / script).read_text()
    assert line in (tmp_path / rc).read_text()


@pytest.mark.parametrize(
    ("shell", "env"),
    [
        ("bash", {"COMP_WORDS": "oaws wat", "COMP_CWORD": "1"}),
        ("zsh", {"_TYPER_COMPLETE_ARGS": "oaws wat"}),
    ],
)
def test_the_script_s_request_is_answered_with_the_commands(run, monkeypatch, shell, env):
    monkeypatch.setenv("_OAWS_COMPLETE", f"complete_{shell}")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, _ = run()
    assert code == 0
    assert "watch" in out and "watchlist" in out and "serve" not in out
