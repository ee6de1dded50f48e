-- Tool calls per skill and tool: counts, error rate and latency percentiles (ms).
SELECT
    skill_name,
    tool_name,
    count(*) AS calls,
    count(*) FILTER (WHERE outcome = 'error') AS errors,
    count(*) FILTER (WHERE outcome = 'pending') AS pending,
    round(count(*) FILTER (WHERE outcome = 'error') / count(*), 4) AS error_rate,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.9) AS p90_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms,
    max(duration_ms) AS max_ms
FROM tool_calls
GROUP BY skill_name, tool_name
ORDER BY calls DESC, skill_name, tool_name
