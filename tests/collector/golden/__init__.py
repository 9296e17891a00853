"""Golden files: the ingest processors' recorded outputs over fixed, seeded inputs.

`cases.py` generates the inputs, `outputs.py` runs normalize, the content split, the whole decode
path (limits, normalize, content, pricing, Arrow), the price book and the stitcher on them, and
`store.py` records and checks `<name>.jsonl` here. `tests/collector/test_golden.py` fails on any
difference; after an intended behaviour change run `python -m tests.collector.golden.regen [name...]`
and review the diff of the changed lines.
"""
