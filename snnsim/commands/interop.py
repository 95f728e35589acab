"""``snnsim import`` (a NIR graph -> an snnsim checkpoint) and ``snnsim export`` (-> NIR)."""

from __future__ import annotations

import click

from snnsim.commands.common import TIMESTEPS, FiniteFloat
from snnsim.interop.nir_io import DEFAULT_DT, RESETS


@click.command("import")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the snnsim checkpoint (.pt).")
@click.option("--timesteps", type=TIMESTEPS, default=None,
              help="Timesteps T to run the network for [default: the file's snnsim metadata; required otherwise].")
@click.option("--dt", type=FiniteFloat(0.0, None, low_open=True), default=None,
              help="Time step in seconds for discretising NIR's continuous-time neurons (forward Euler: "
                   "leak = 1 - dt/tau, input gain r*dt/tau) [default: the file's 'dt' metadata, else 1e-4].")
@click.option("--reset", type=click.Choice(RESETS), default=None,
              help="value: NIR's hard reset to v_reset; subtract: subtract the threshold (soft reset) "
                   "[default: value, or what snnsim wrote in the node's metadata].")
def import_cmd(source: str, out: str, timesteps: int | None, dt: float | None, reset: str | None) -> None:
    """Build an snnsim SNN checkpoint from a NIR graph file (NIR 1.0, nir.read).

    Nested graphs are flattened, fan-in edges become an Add, Scale nodes are folded into the
    synapse in front of them, and the neurons are discretised by forward Euler
    (docs/interop.md). An unsupported node type or a recurrent edge is refused in one line and
    nothing is written.
    """
    from snnsim.checkpoint import save_model
    from snnsim.interop.nir_io import import_nir

    result = import_nir(source, timesteps=timesteps, dt=dt, reset=reset)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    model = result.model
    save_model(model, out)
    pops = [p for p in model.populations if p.spiking]
    click.echo(f"wrote {out}: {model.name} ({len(model.graph.nodes)} nodes, {len(model.layer_infos)} layers, "
               f"{len(pops)} spiking populations), T={model.timesteps}, dt={result.dt:g} s ({result.dt_source})")


@click.command("export")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--nir", "nir_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the NIR graph (HDF5, nir.write).")
@click.option("--dt", type=FiniteFloat(0.0, None, low_open=True), default=DEFAULT_DT, show_default=True,
              help="Time step in seconds the NIR time constants are written for (tau = dt / (1 - leak)).")
def export_cmd(model_path: str, nir_path: str, dt: float) -> None:
    """Write an snnsim SNN checkpoint's graph as a NIR graph file.

    Average and sum pooling, convolutions, affines, flatten, LIF / IF and the output integrator
    map one to one; an Add becomes fan-in edges. MaxPool2d and an unfolded BatchNorm2d have no
    NIR node and are refused. What NIR cannot say (soft reset, '>=' firing) is written in the
    node's metadata and warned about.
    """
    from snnsim.checkpoint import load_model
    from snnsim.interop.nir_io import export_nir

    model = load_model(model_path)
    warnings = export_nir(model, nir_path, dt=dt)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {nir_path}: {model.name} as NIR ({len(model.graph.nodes)} snnsim nodes), dt={dt:g} s")
