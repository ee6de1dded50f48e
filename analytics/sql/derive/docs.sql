-- Every checkpoint document of the batch: checkpoint files and the checkpoints embedded in
-- events. json() rewrites both the same way, so the same checkpoint hashes the same. Each
-- document is parsed once into a struct (s) and once for its message texts (msgs).
CREATE OR REPLACE TEMP TABLE docs AS
WITH found AS (
    SELECT unnest(json_extract(raw, ['$.checkpoint', '$.nextCheckpoint'])) AS doc,
        type AS seen_in, source_file, user_name
    FROM batch_events
    WHERE checkpoint_id IS NOT NULL OR next_checkpoint_id IS NOT NULL
    UNION ALL
    SELECT json_extract(raw, '$.initialCheckpoint'), type, source_file, user_name
    FROM batch_events WHERE type = 'startRun'
    UNION ALL
    SELECT json(text), 'file', source_file, user_name FROM batch_checkpoint_files
)
SELECT
    doc, seen_in, source_file, user_name,
    json_transform(doc, '{
        "id": "VARCHAR", "jobId": "VARCHAR", "runId": "VARCHAR", "status": "VARCHAR",
        "stepNumber": "BIGINT",
        "expert": {"key": "VARCHAR", "name": "VARCHAR", "version": "VARCHAR"},
        "usage": {"inputTokens": "BIGINT", "outputTokens": "BIGINT",
                  "reasoningTokens": "BIGINT", "totalTokens": "BIGINT",
                  "cachedInputTokens": "BIGINT"},
        "contextWindow": "BIGINT", "contextWindowUsage": "DOUBLE", "retryCount": "BIGINT",
        "error": {"name": "VARCHAR", "message": "VARCHAR"},
        "messages": [{"id": "VARCHAR"}]
    }') AS s,
    json_extract(doc, ['$.delegateTo', '$.delegatedBy', '$.pendingToolCalls',
                       '$.partialToolResults', '$.metadata', '$.messages']) AS parts
FROM found
WHERE doc IS NOT NULL;
