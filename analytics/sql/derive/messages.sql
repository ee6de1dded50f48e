-- Each message once, by id: from the messages events carry (small, parsed anyway) and,
-- for the messages no event carries (instruction, user query), from the first checkpoint
-- holding them. A checkpoint repeats every earlier message: only the positions of
-- messages neither an event of the batch nor the dataset (stored_messages) holds are
-- extracted from it, and each checkpoint's text is parsed once for all of them. So a
-- batch costs what its new messages cost, not what the history before them does: each
-- batch's first checkpoint holds every earlier message of its run. Messages without an
-- id (the reference's startRun inputMessages) are skipped; they reappear with ids in the
-- checkpoints.
WITH from_events AS (
    SELECT job_id, run_id, user_name, json_extract(raw, '$.newMessage') AS msg
    FROM batch_events
    WHERE type IN ('callTools', 'callDelegate', 'callInteractiveTool')
    UNION ALL
    SELECT job_id, run_id, user_name, unnest(json_extract(raw, '$.newMessages[*]'))
    FROM batch_events
    WHERE type IN ('finishToolCall', 'finishAllToolCalls', 'retry')
),
event_messages AS (
    SELECT job_id, run_id, user_name, msg ->> 'id' AS message_id, msg FROM from_events
),
positions AS (
    SELECT origin, src_no, s.jobId AS job_id, s.runId AS run_id, user_name,
        unnest(range(len(s.messages))) AS pos,
        unnest([m.id FOR m IN s.messages]) AS message_id
    FROM docs
),
firsts AS (
    SELECT * FROM positions AS p
    WHERE message_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM event_messages AS e WHERE e.message_id = p.message_id)
        AND NOT EXISTS (SELECT 1 FROM stored_messages AS m WHERE m.message_id = p.message_id)
    QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY origin, src_no, pos) = 1
),
wanted AS (
    SELECT origin, src_no, any_value(job_id) AS job_id, any_value(run_id) AS run_id,
        any_value(user_name) AS user_name,
        list(message_id ORDER BY pos) AS ids, list(pos + 1 ORDER BY pos) AS indexes
    FROM firsts
    GROUP BY origin, src_no
),
sources AS (
    SELECT 0 AS origin, event_no AS src_no,
        json_extract(raw, '$.checkpoint.messages[*]') AS messages
    FROM batch_events
    WHERE event_no IN (SELECT src_no FROM wanted WHERE origin = 0)
    UNION ALL
    SELECT 1, event_no, json_extract(raw, '$.initialCheckpoint.messages[*]')
    FROM batch_events
    WHERE event_no IN (SELECT src_no FROM wanted WHERE origin = 1)
    UNION ALL
    SELECT 2, file_no, json_extract(text, '$.messages[*]')
    FROM batch_checkpoint_files
    WHERE file_no IN (SELECT src_no FROM wanted WHERE origin = 2)
),
doc_messages AS (
    SELECT w.job_id, w.run_id, w.user_name, unnest(w.ids) AS message_id,
        unnest(list_select(d.messages, w.indexes)) AS msg
    FROM wanted AS w
    JOIN sources AS d USING (origin, src_no)
),
distinct_messages AS (
    SELECT * FROM (
        SELECT * FROM event_messages
        UNION ALL
        SELECT * FROM doc_messages
    )
    WHERE message_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY job_id, run_id) = 1
)
SELECT
    message_id, job_id, run_id, msg ->> 'type' AS message_type,
    array_to_string(
        list_filter(
            list_concat(
                json_extract_string(msg, '$.contents[*].text'),
                json_extract_string(msg, '$.contents[*].contents[*].text')
            ),
            lambda t: t IS NOT NULL
        ),
        chr(10)
    ) AS text,
    msg::VARCHAR AS message, user_name
FROM distinct_messages
