-- Each message once, by id: from checkpoints and from the messages events carry.
-- Messages without an id (the reference's startRun inputMessages) are skipped here; they
-- reappear with ids in the checkpoints.
WITH found AS (
    SELECT doc ->> 'jobId' AS job_id, doc ->> 'runId' AS run_id, user_name,
        unnest(json_extract(doc, '$.messages[*]')) AS msg
    FROM docs
    UNION ALL
    SELECT job_id, run_id, user_name, json_extract(raw, '$.newMessage')
    FROM batch_events
    WHERE type IN ('callTools', 'callDelegate', 'callInteractiveTool')
    UNION ALL
    SELECT job_id, run_id, user_name, unnest(json_extract(raw, '$.newMessages[*]'))
    FROM batch_events
    WHERE type IN ('finishToolCall', 'finishAllToolCalls', 'retry')
)
SELECT
    msg ->> 'id' AS message_id, job_id, run_id, msg ->> 'type' AS message_type,
    array_to_string(
        list_filter(json_extract_string(msg, '$.contents[*].text'), lambda t: t IS NOT NULL), chr(10)
    ) AS text,
    msg::VARCHAR AS message, user_name
FROM found
WHERE msg ->> 'id' IS NOT NULL
