-- Every checkpoint document of the batch: checkpoint files and the checkpoints embedded in
-- events. json() rewrites both the same way, so the same checkpoint hashes the same. Each
-- document is parsed once into a struct (s), once more for its few JSON-valued fields.
-- continueToNextStep's nextCheckpoint is left out: the next step-ending event carries the
-- same checkpoint with the same messages and more (it stays in the events' raw payload).
CREATE OR REPLACE TEMP TABLE docs AS
WITH found AS (
    SELECT json_extract(raw, '$.checkpoint') AS doc, type AS seen_in, source_file, user_name
    FROM batch_events
    WHERE checkpoint_id IS NOT NULL
    UNION ALL
    SELECT json_extract(raw, '$.initialCheckpoint'), type, source_file, user_name
    FROM batch_events WHERE type = 'startRun'
    UNION ALL
    SELECT json(text), 'file', source_file, user_name FROM batch_checkpoint_files
)
SELECT
    row_number() OVER () AS doc_no,
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
                       '$.partialToolResults', '$.metadata']) AS parts
FROM found
WHERE doc IS NOT NULL;
