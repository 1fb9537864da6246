"""``oaws completion SHELL``: the shell's completion script, to save where the shell reads it.

``oaws --install-completion`` does the same for the shell it detects (typer's own); this
command names the shell, for a script, a dotfiles repository or a shell it cannot detect.
"""

from __future__ import annotations

from typing import Annotated

import typer

from oaws.cli.common import UsageError, command

SHELLS = ("bash", "zsh", "fish")

app = typer.Typer()


@command(app)
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", show_default=False)],
) -> None:
    """Print the shell completion script of bash, zsh or fish.

    bash: `oaws completion bash > ~/.local/share/bash-completion/completions/oaws`;
    zsh: `oaws completion zsh > ~/.zfunc/_oaws` (with `fpath+=~/.zfunc` before `compinit` in ~/.zshrc);
    fish: `oaws completion fish > ~/.config/fish/completions/oaws.fish`.
    """
    if shell not in SHELLS:
        raise UsageError(f"no completion for {shell!r}; use one of {', '.join(SHELLS)}")
    from typer._completion_shared import get_completion_script
    from typer.completion import completion_init

    completion_init()  # typer's completion classes, which answer the script's requests
    typer.echo(get_completion_script(prog_name="oaws", complete_var="_OAWS_COMPLETE", shell=shell))
