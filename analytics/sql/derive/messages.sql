-- Each message once, by id: from the messages events carry (small, parsed anyway) and,
-- for the messages no event carries (instruction, user query), from the first checkpoint
-- holding them. A checkpoint repeats every earlier message: only the positions of new
-- ones are extracted from it. Messages without an id (the reference's startRun
-- inputMessages) are skipped; they reappear with ids in the checkpoints.
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
    QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY origin, src_no, pos) = 1
),
sources AS (
    SELECT 0 AS origin, event_no AS src_no, raw AS src, '$.checkpoint' AS prefix
    FROM batch_events
    WHERE event_no IN (SELECT src_no FROM firsts WHERE origin = 0)
    UNION ALL
    SELECT 1, event_no, raw, '$.initialCheckpoint'
    FROM batch_events
    WHERE event_no IN (SELECT src_no FROM firsts WHERE origin = 1)
    UNION ALL
    SELECT 2, file_no, text, '$'
    FROM batch_checkpoint_files
    WHERE file_no IN (SELECT src_no FROM firsts WHERE origin = 2)
),
doc_messages AS (
    SELECT f.job_id, f.run_id, f.user_name, f.message_id,
        json_extract(d.src, d.prefix || '.messages[' || f.pos || ']') AS msg
    FROM firsts AS f
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
