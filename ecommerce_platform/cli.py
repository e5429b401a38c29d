"""The `ecommerce` command: the non-Dagster entry points (produce, land, ask, recommend, ...).

Sub-commands live in their layer's ``cli.py`` and are imported only when invoked, so
``ecommerce ask`` does not pay for the imports of ``ecommerce recommend``.
"""

from __future__ import annotations

import importlib

import click

# The layers' commands: name -> "module:attribute" (a click.Command), imported on use.
COMMANDS: dict[str, str] = {
    "produce": "ecommerce_platform.ingestion.cli:produce",
    "land": "ecommerce_platform.ingestion.cli:land",
    "ask": "ecommerce_platform.rag.cli:ask",
    "predict-high-value": "ecommerce_platform.ml.cli:predict_high_value",
    "recommend": "ecommerce_platform.ml.cli:recommend",
    "similar": "ecommerce_platform.ml.cli:similar",
    "forecast": "ecommerce_platform.ml.cli:forecast",
    "serve": "ecommerce_platform.serving.cli:serve",
}


class LazyGroup(click.Group):
    """Sub-commands imported on use; configuration errors end as one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        from ecommerce_platform.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"configuration error: {exc}", err=True)
            ctx.exit(2)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str):  # noqa: ANN201
        if name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Ecommerce data platform: command-line entry points.

    Settings come from the environment and from `.env` in the working folder (as for `dagster`: the
    file's values win). The asset graph itself runs with `dagster dev`, `dg launch` or `make run`.
    """
    from ecommerce_platform.config import apply_env_file

    apply_env_file()


@main.command("settings")
def show_settings() -> None:
    """Print the active deployment settings (never secrets)."""
    from ecommerce_platform.config import load_settings

    s = load_settings()
    for key in ("deployment", "data_dir", "source", "warehouse_engine", "s3_bucket", "s3_prefix",
                "glue_database", "athena_workgroup", "stream_name", "region", "endpoint_url"):
        click.echo(f"{key}: {getattr(s, key)}")
    click.echo(f"lake_root: {s.lake_root}")


@main.command("materialize")
@click.option("--select", default="*", show_default=True,
              help="Asset selection (e.g. 'key:clean_parquet+' for it and all downstream, "
                   "'key:sales_dashboard', 'group:analytics').")
@click.option("--force", is_flag=True, help="Rebuild even what is up to date (run tag ecommerce/force=true).")
def materialize(select: str, force: bool) -> None:
    """Land new sources, clean their months and rebuild everything downstream (what `make run` does):
    Dagster runs on the instance of $DAGSTER_HOME, visible in the UI; what is up to date is reused."""
    import os

    if not os.environ.get("DAGSTER_HOME"):
        click.echo("configuration error: DAGSTER_HOME is not set (the Dagster instance that records the "
                   "runs; `make run` sets it to .dagster_home/)", err=True)
        raise SystemExit(2)
    import dagster as dg

    from ecommerce_platform.runner import rebuild

    with dg.DagsterInstance.get() as instance:
        try:
            results = rebuild(instance, select=select, force=force, log=click.echo)
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    for result in results:
        click.echo(f"run {result.run_id} ({result.dagster_run.job_name}): success")
    if not results:
        click.echo("nothing to do: no source file, no stream record and nothing selected to rebuild")


def run() -> None:
    """The `ecommerce` process: ``main``, then exit without the C++ libraries' teardown.

    pyarrow 25's thread pool can abort the interpreter's exit after the work is done ("terminate called
    without an active exception", exit code -6, about 1 run in 20 of a command that read Parquet). So the
    exit handlers Python registered (logging, finalizers) run here, the output is flushed, and the process
    ends with ``os._exit`` and the command's exit code.
    """
    import atexit
    import os
    import sys

    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # SystemExit("message"): Python prints it and exits 1
            print(exc.code, file=sys.stderr)
            code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe: nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
