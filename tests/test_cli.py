"""The command line as a whole: one-line errors, help text and defaults, choices, progress."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from snnsim import progress
from snnsim.cli import COMMANDS, cli, main

Run = Callable[..., tuple[int, str, str]]


def _commands() -> Iterator[tuple[str, click.Command]]:
    """Every leaf command, with its full name ('prune spatial', 'hw list', ...)."""
    ctx = click.Context(cli)

    def walk(prefix: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                yield from walk(f"{prefix} {name}".strip(), sub)
        else:
            yield prefix, cmd

    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None, name
        yield from walk(name, cmd)


ALL = list(_commands())


def test_every_command_is_listed() -> None:
    names = {n for n, _ in ALL}
    assert {"train", "info", "prune spatial", "prune temporal", "quantize", "evaluate", "trace",
            "estimate", "compare", "report", "demo"} <= names


@pytest.mark.parametrize("name,cmd", ALL, ids=[n for n, _ in ALL])
def test_every_option_has_help_and_states_its_default(name: str, cmd: click.Command) -> None:
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.hidden or param.name == "help":
            continue
        assert param.help, f"snnsim {name} {param.opts[0]} has no help text"
        if param.is_flag or param.required:
            continue
        stated = param.show_default or "[default" in param.help
        assert stated, f"snnsim {name} {param.opts[0]}: neither show_default nor '[default: ...]' in its help"


@pytest.mark.parametrize("name,cmd", ALL, ids=[n for n, _ in ALL])
def test_seed_and_device_where_the_command_computes(name: str, cmd: click.Command) -> None:
    """The README's promise: every command that trains, runs or records takes --seed and --device."""
    opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
    computes = name not in ("info", "report", "hw list", "hw show", "import", "export")
    assert computes == ("--seed" in opts and "--device" in opts), name


def test_choices_are_the_librarys_constants() -> None:
    from snnsim.arch import ARCH_NAMES
    from snnsim.cost import FIRST_LAYER_CHOICES
    from snnsim.data import DATASET_NAMES
    from snnsim.device import DEVICES
    from snnsim.sim.engine import ENGINES
    from snnsim.sim.replay import COUNTINGS

    by_name = dict(ALL)

    def choices(cmd: str, opt: str) -> tuple[str, ...]:
        param = next(p for p in by_name[cmd].params if opt in getattr(p, "opts", []))
        assert isinstance(param.type, click.Choice)
        return tuple(param.type.choices)

    from snnsim.graph.builders import GRAPH_BUILDERS, network_names

    assert choices("train", "--arch") == tuple(network_names()) == (*ARCH_NAMES, *GRAPH_BUILDERS)
    assert "digits-resnet" in choices("train", "--arch")
    assert choices("train", "--dataset") == tuple(DATASET_NAMES)
    assert choices("estimate", "--counting") == tuple(COUNTINGS)
    assert choices("estimate", "--first-layer") == tuple(FIRST_LAYER_CHOICES)
    assert choices("compare", "--first-layer") == tuple(FIRST_LAYER_CHOICES)
    assert choices("estimate", "--engine") == tuple(ENGINES)
    assert choices("trace", "--device") == tuple(DEVICES)


@pytest.mark.parametrize("args", [
    ["estimate", "--bogus"],
    ["estimate", "--counting", "xyz"],
    ["nonsense"],
    ["train", "--timesteps", "0"],
    ["train", "--timesteps", str(10**20)],
    ["train", "--seed", str(2**64)],
    ["train", "--seed", "-1"],
    ["train", "--lr", "nan"],
    ["train", "--lr", "inf"],
    ["evaluate", "--model", "m.pt", "--timesteps", str(10**20)],
    ["info", "--arch", "digits", "--classes", "0"],
])
def test_usage_errors_are_one_line_exit_2(run_cli: Run, args: list[str]) -> None:
    code, out, err = run_cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnsim: error: "), err
    assert "--help" in lines[0]


def test_no_arguments_prints_help_exit_0(run_cli: Run) -> None:
    code, out, err = run_cli()
    assert code == 0 and "Usage: snnsim" in out and "estimate" in out


def test_os_errors_are_one_line(run_cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from snnsim.commands import train as train_cmd

    def full_disk(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "ann.pt"))

    monkeypatch.setattr(train_cmd, "hybrid_train", full_disk, raising=False)
    monkeypatch.setattr("snnsim.training.hybrid_train", full_disk)
    code, out, err = run_cli("train", "--dataset", "synthetic", "--out", tmp_path / "runs", "--quiet")
    assert code == 2
    assert err.strip().splitlines() == [
        f"snnsim: error: cannot access {tmp_path / 'runs' / 'ann.pt'}: No space left on device; "
        "free disk space or choose another output location"]


def test_progress_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    import io as _io

    fake = _io.StringIO()
    monkeypatch.setattr("sys.stderr", fake)
    try:
        progress.set_policy("auto")
        assert not progress.bars_enabled()  # stderr is not a terminal
        progress.set_policy("always")
        assert progress.bars_enabled()
        progress.set_policy("never")
        assert progress.quiet() and not progress.bars_enabled()
        progress.progress_line("hidden")
        progress.set_policy("auto")
        progress.progress_line("shown")
        assert fake.getvalue() == "shown\n"
    finally:
        progress.set_policy("auto")


def test_quiet_and_progress_flags_set_the_policy(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def record(*a: object, **k: object) -> None:
        seen.append(progress.policy())
        raise SystemExit(0)

    monkeypatch.setattr("snnsim.commands.estimate.resolve_models", record)
    run_cli("estimate", "--quiet")
    run_cli("estimate", "--progress")
    run_cli("estimate")
    assert seen == ["never", "always", "auto"]


def test_snnsim_estimate_is_callable_twice() -> None:
    import snnsim
    import snnsim.estimation  # noqa: F401 - importing the module must not shadow the function

    assert callable(snnsim.estimate)
    from snnsim.estimation import estimate

    assert snnsim.estimate is estimate
    main_ = main  # the CLI entry point exists alongside
    assert callable(main_)
