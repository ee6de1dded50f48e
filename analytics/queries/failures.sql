-- Failures with their errors: runs stopped by an error, newest first, with the last retry reason.
SELECT
    started_at,
    user_name,
    expert_key,
    job_id,
    run_id,
    steps,
    retries,
    error_name,
    error_message,
    last_retry_reason
FROM runs
WHERE outcome = 'stoppedByError'
ORDER BY started_at DESC
