-- job.json as written at each update; the catalog's jobs view picks the latest.
WITH j AS (SELECT json(text) AS doc, source_file, user_name FROM batch_job_files)
SELECT
    doc ->> 'id' AS job_id,
    md5(doc::VARCHAR) AS version_hash,
    doc ->> 'status' AS status,
    doc ->> 'coordinatorExpertKey' AS coordinator_expert_key,
    TRY_CAST(doc ->> 'totalSteps' AS BIGINT) AS total_steps,
    TRY_CAST(doc ->> 'maxSteps' AS BIGINT) AS max_steps,
    TRY_CAST(doc -> 'usage' ->> 'inputTokens' AS BIGINT) AS input_tokens,
    TRY_CAST(doc -> 'usage' ->> 'outputTokens' AS BIGINT) AS output_tokens,
    TRY_CAST(doc -> 'usage' ->> 'reasoningTokens' AS BIGINT) AS reasoning_tokens,
    TRY_CAST(doc -> 'usage' ->> 'totalTokens' AS BIGINT) AS total_tokens,
    TRY_CAST(doc -> 'usage' ->> 'cachedInputTokens' AS BIGINT) AS cached_input_tokens,
    TRY_CAST(doc ->> 'startedAt' AS BIGINT) AS started_at,
    TRY_CAST(doc ->> 'finishedAt' AS BIGINT) AS finished_at,
    source_file, user_name
FROM j
WHERE doc ->> 'id' IS NOT NULL
