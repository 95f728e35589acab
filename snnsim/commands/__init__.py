"""Click subcommands, one module per stage of the pipeline (see snnsim.cli.COMMANDS)."""
