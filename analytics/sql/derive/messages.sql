-- Each message once, by id: from checkpoints and from the messages events carry. A
-- message is parsed only once its id has been found new. Messages without an id (the
-- reference's startRun inputMessages) are skipped; they reappear with ids in checkpoints.
WITH from_docs AS (
    SELECT s.jobId AS job_id, s.runId AS run_id, user_name,
        unnest([m.id FOR m IN s.messages]) AS message_id,
        unnest(json_extract(parts[6], '$[*]')) AS msg
    FROM docs
),
from_events AS (
    SELECT job_id, run_id, user_name, json_extract(raw, '$.newMessage') AS msg
    FROM batch_events
    WHERE type IN ('callTools', 'callDelegate', 'callInteractiveTool')
    UNION ALL
    SELECT job_id, run_id, user_name, unnest(json_extract(raw, '$.newMessages[*]'))
    FROM batch_events
    WHERE type IN ('finishToolCall', 'finishAllToolCalls', 'retry')
),
found AS (
    SELECT job_id, run_id, user_name, message_id, msg FROM from_docs
    UNION ALL
    SELECT job_id, run_id, user_name, msg ->> 'id', msg FROM from_events
),
distinct_messages AS (
    SELECT * FROM found
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
