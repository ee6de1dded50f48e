-- Runs stopped because they reached maxSteps.
SELECT
    started_at,
    user_name,
    expert_key,
    job_id,
    run_id,
    steps,
    max_steps,
    total_tokens
FROM runs
WHERE outcome = 'stoppedByExceededMaxSteps'
ORDER BY started_at DESC
