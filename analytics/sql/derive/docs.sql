-- Every checkpoint document of the batch: checkpoint files and the checkpoints embedded in
-- events. json() rewrites both the same way, so the same checkpoint hashes the same.
CREATE OR REPLACE TEMP TABLE docs AS
SELECT json_extract(raw, '$.checkpoint') AS doc, type AS seen_in, source_file, user_name
FROM batch_events WHERE checkpoint_id IS NOT NULL
UNION ALL
SELECT json_extract(raw, '$.nextCheckpoint'), type, source_file, user_name
FROM batch_events WHERE next_checkpoint_id IS NOT NULL
UNION ALL
SELECT json_extract(raw, '$.initialCheckpoint'), type, source_file, user_name
FROM batch_events WHERE type = 'startRun' AND json_exists(raw, '$.initialCheckpoint')
UNION ALL
SELECT json(text), 'file', source_file, user_name FROM batch_checkpoint_files;
