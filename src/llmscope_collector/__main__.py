"""`python -m llmscope_collector` is the same as the `llmscope` console script."""

from llmscope_collector.cli import main

raise SystemExit(main())
