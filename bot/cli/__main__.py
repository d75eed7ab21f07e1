"""`python -m bot.cli`: the same as the `vestnik` command."""

from bot.cli.main import main

raise SystemExit(main())
