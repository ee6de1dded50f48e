-- run-setting.json; secrets are never copied (no env values, no API key, no headers).
WITH s AS (SELECT json(text) AS doc, source_file, user_name FROM batch_run_setting_files)
SELECT
    doc ->> 'runId' AS run_id,
    md5(doc::VARCHAR) AS version_hash,
    doc ->> 'jobId' AS job_id,
    doc ->> 'expertKey' AS expert_key,
    doc ->> 'model' AS model,
    doc -> 'providerConfig' ->> 'providerName' AS provider_name,
    TRY_CAST(doc ->> 'temperature' AS DOUBLE) AS temperature,
    TRY_CAST(doc ->> 'maxSteps' AS BIGINT) AS max_steps,
    TRY_CAST(doc ->> 'maxRetries' AS BIGINT) AS max_retries,
    TRY_CAST(doc ->> 'timeout' AS BIGINT) AS timeout_ms,
    doc -> 'input' ->> 'text' AS input_text,
    TRY_CAST(doc ->> 'startedAt' AS BIGINT) AS started_at,
    TRY_CAST(doc ->> 'updatedAt' AS BIGINT) AS updated_at,
    doc ->> 'runtimeVersion' AS runtime_version,
    source_file, user_name
FROM s
WHERE doc ->> 'runId' IS NOT NULL
