"""The DuckDB SQL the alert evaluator runs: one statement per rule per evaluation.

`$files` is the list of the rule's project partitions (`date=` directories) that the window
touches, built by `storage.layout`, so DuckDB opens only those files; `start_ns` bounds prune row
groups inside them. All values are bound parameters; the filter clause is constant text.

LLM metrics count model calls once: an LLM span whose parent is itself an LLM span in the same
trace (a client library's span under an instrumentation's span for the same call) is skipped,
the rule `query.waterfall._totals` applies to one trace. Filters apply to the counted calls;
their parameter names are the fields of `rules.Filters`.
"""

from __future__ import annotations

_SPANS = "read_parquet($files, hive_partitioning = true, union_by_name = true)"

# The average of the scores named $score given in the window (`$files`: the scores dataset's
# partitions), each score id counted once in its latest version (query.scores keeps the same rule).
SCORE_AVG = """
SELECT avg(value) AS value, count(value) AS samples
FROM (
  SELECT value, time_ns FROM read_parquet($files, union_by_name = true) WHERE name = $score
  QUALIFY row_number() OVER (PARTITION BY id ORDER BY received_ns DESC, time_ns DESC) = 1
)
WHERE time_ns >= $from_ns AND time_ns < $to_ns
"""

_FILTERS = """
  AND ($model IS NULL OR request_model = $model OR response_model = $model)
  AND ($provider IS NULL OR provider = $provider)
  AND ($service IS NULL OR service_name = $service)
  AND ($session IS NULL OR session_id = $session)
  AND ($user IS NULL OR user_id = $user)
  AND ($prompt_name IS NULL OR prompt_name = $prompt_name)
  AND ($prompt_version IS NULL OR prompt_version = $prompt_version)
"""

LLM_CALLS = f"""
WITH llm AS (
  SELECT trace_id, span_id, parent_span_id, request_model, response_model, provider, service_name,
         session_id, user_id, prompt_name, prompt_version, duration_ns, status_code, cost_usd,
         input_tokens, output_tokens, ttft_s
  FROM {_SPANS}
  WHERE start_ns >= $from_ns AND start_ns < $to_ns AND list_contains($llm_operations, operation)
), calls AS (
  SELECT * FROM llm AS c
  WHERE NOT EXISTS (SELECT 1 FROM llm AS p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id)
  {_FILTERS}
)
SELECT count(*) AS requests,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       coalesce(sum(cost_usd), 0)::DOUBLE AS cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL) AS cost_unknown,
       coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0)::DOUBLE AS tokens,
       quantile_cont(duration_ns, 0.50) / 1e6 AS latency_p50,
       quantile_cont(duration_ns, 0.95) / 1e6 AS latency_p95,
       quantile_cont(duration_ns, 0.99) / 1e6 AS latency_p99,
       quantile_cont(ttft_s, 0.95) * 1000 AS ttft_p95,
       count(ttft_s) AS ttft_samples
FROM calls
"""  # noqa: S608 - constant text, values are bound

SPAN_COUNT = f"""
SELECT count(*) AS spans
FROM {_SPANS}
WHERE start_ns >= $from_ns AND start_ns < $to_ns
{_FILTERS}
"""  # noqa: S608 - constant text, values are bound
