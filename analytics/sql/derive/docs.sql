-- Every checkpoint of the batch: checkpoint files and the checkpoints embedded in events.
-- Each is parsed once into a struct (s) and once for its JSON-valued fields (parts); its
-- version hash covers both. Where it came from is kept as (origin, src_no): 0 an event's
-- checkpoint, 1 a startRun's initialCheckpoint, 2 a checkpoint file, and the row of the
-- event or file; the text itself is not copied here (messages.sql reads back the few it
-- needs). continueToNextStep's nextCheckpoint is left out: the next step-ending event
-- carries the same checkpoint with the same messages and more (it stays in the events' raw
-- payload). So is a checkpoint in an event file whose history was left to the checkpoint
-- file (elidedMessages, written by our runtime): that file is the same checkpoint, whole.
CREATE OR REPLACE TEMP TABLE docs AS
WITH found AS MATERIALIZED (
    SELECT
        0 AS origin, event_no AS src_no, type AS seen_in, source_file, user_name,
        json_transform(raw, '{"checkpoint": @CHECKPOINT@}').checkpoint AS s,
        json_extract(raw, ['$.checkpoint.delegateTo', '$.checkpoint.delegatedBy',
                           '$.checkpoint.pendingToolCalls', '$.checkpoint.partialToolResults',
                           '$.checkpoint.metadata']) AS parts
    FROM batch_events
    WHERE checkpoint_id IS NOT NULL
        AND json_extract(raw, '$.checkpoint.elidedMessages') IS NULL
    UNION ALL
    SELECT
        1, event_no, type, source_file, user_name,
        json_transform(raw, '{"initialCheckpoint": @CHECKPOINT@}').initialCheckpoint,
        json_extract(raw, ['$.initialCheckpoint.delegateTo', '$.initialCheckpoint.delegatedBy',
                           '$.initialCheckpoint.pendingToolCalls',
                           '$.initialCheckpoint.partialToolResults',
                           '$.initialCheckpoint.metadata'])
    FROM batch_events
    WHERE type = 'startRun'
        AND json_extract(raw, '$.initialCheckpoint.elidedMessages') IS NULL
    UNION ALL
    SELECT
        2, file_no, 'file', source_file, user_name,
        json_transform(text, '@CHECKPOINT@'),
        json_extract(text, ['$.delegateTo', '$.delegatedBy', '$.pendingToolCalls',
                            '$.partialToolResults', '$.metadata'])
    FROM batch_checkpoint_files
)
SELECT *, md5(s::VARCHAR || parts::VARCHAR) AS version_hash
FROM found
WHERE s.id IS NOT NULL;
