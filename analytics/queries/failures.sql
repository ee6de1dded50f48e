-- Failures with their errors: runs stopped by an error, newest first, with the last retry reason.
WITH last_retry AS (
    SELECT run_id, arg_max(reason, ts) AS last_retry_reason
    FROM events
    WHERE type = 'retry'
    GROUP BY run_id
)
SELECT
    r.started_at,
    r.user_name,
    r.expert_key,
    r.job_id,
    r.run_id,
    r.steps,
    r.retries,
    r.error_name,
    r.error_message,
    l.last_retry_reason
FROM runs AS r
LEFT JOIN last_retry AS l USING (run_id)
WHERE r.outcome = 'stoppedByError'
ORDER BY r.started_at DESC
