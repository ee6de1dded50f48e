-- The 50 slowest steps: step duration from the step's own start and finish times.
SELECT
    run_id,
    expert_key,
    user_name,
    step_number,
    step_started_at,
    step_ms,
    latency_ms AS llm_latency_ms,
    retries,
    total_tokens
FROM generations
WHERE step_ms IS NOT NULL
ORDER BY step_ms DESC, run_id, step_number
LIMIT 50
