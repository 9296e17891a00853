"""`python -m llmscope_collector` is the same as the `llmscope` console script."""

from llmscope_collector.entry import main

if __name__ == "__main__":  # guarded: decode worker processes (spawn) import the main module
    raise SystemExit(main())
