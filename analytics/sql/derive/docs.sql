-- Every checkpoint of the batch: checkpoint files and the checkpoints embedded in events
-- (src is the event's raw line or the file's text, prefix where the checkpoint sits in it).
-- Each is parsed once into a struct (s) and once for its JSON-valued fields (parts); its
-- version hash covers both. continueToNextStep's nextCheckpoint is left out: the next
-- step-ending event carries the same checkpoint with the same messages and more (it stays
-- in the events' raw payload).
CREATE OR REPLACE TEMP TABLE docs AS
WITH found AS (
    SELECT
        raw AS src, '$.checkpoint' AS prefix, type AS seen_in, source_file, user_name,
        json_transform(raw, '{"checkpoint": @CHECKPOINT@}').checkpoint AS s,
        json_extract(raw, ['$.checkpoint.delegateTo', '$.checkpoint.delegatedBy',
                           '$.checkpoint.pendingToolCalls', '$.checkpoint.partialToolResults',
                           '$.checkpoint.metadata']) AS parts
    FROM batch_events
    WHERE checkpoint_id IS NOT NULL
    UNION ALL
    SELECT
        raw, '$.initialCheckpoint', type, source_file, user_name,
        json_transform(raw, '{"initialCheckpoint": @CHECKPOINT@}').initialCheckpoint,
        json_extract(raw, ['$.initialCheckpoint.delegateTo', '$.initialCheckpoint.delegatedBy',
                           '$.initialCheckpoint.pendingToolCalls',
                           '$.initialCheckpoint.partialToolResults',
                           '$.initialCheckpoint.metadata'])
    FROM batch_events
    WHERE type = 'startRun'
    UNION ALL
    SELECT
        text, '$', 'file', source_file, user_name,
        json_transform(text, '@CHECKPOINT@'),
        json_extract(text, ['$.delegateTo', '$.delegatedBy', '$.pendingToolCalls',
                            '$.partialToolResults', '$.metadata'])
    FROM batch_checkpoint_files
)
SELECT row_number() OVER () AS doc_no, *, md5(s::VARCHAR || parts::VARCHAR) AS version_hash
FROM found
WHERE s.id IS NOT NULL;
