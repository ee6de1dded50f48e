-- Runs by outcome per Expert: how many runs completed, stopped or failed, and their steps.
SELECT
    expert_key,
    outcome,
    count(*) AS runs,
    round(avg(steps), 1) AS avg_steps,
    round(avg(duration_ms)) AS avg_duration_ms
FROM runs
GROUP BY expert_key, outcome
ORDER BY expert_key, runs DESC, outcome
