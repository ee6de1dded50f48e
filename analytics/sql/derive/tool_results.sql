-- Every sighting of a tool result: the toolResults of resolveToolResults/attemptCompletion,
-- and the toolResultParts of finishToolCall/finishAllToolCalls (delegate results, isError).
-- A result counts as an error when flagged isError, or when its text starts with "Error"
-- or is a JSON object with an "error" key (the reference drops MCP's isError flag).
WITH results AS (
    SELECT
        event_id, type AS event_type, ts, job_id, run_id, user_name,
        unnest(
            CASE WHEN type = 'attemptCompletion'
                THEN [json_extract(raw, '$.toolResult')]
                ELSE json_extract(raw, '$.toolResults[*]')
            END
        ) AS res
    FROM batch_events
    WHERE type IN ('resolveToolResults', 'attemptCompletion')
),
messages AS (
    SELECT
        event_id, type AS event_type, ts, job_id, run_id, user_name,
        unnest(json_extract(raw, '$.newMessages[*]')) AS msg
    FROM batch_events
    WHERE type IN ('finishToolCall', 'finishAllToolCalls')
),
parts AS (
    SELECT
        event_id, event_type, ts, job_id, run_id, user_name,
        unnest(json_extract(msg, '$.contents[*]')) AS part
    FROM messages
),
sightings AS (
    SELECT
        res ->> 'id' AS tool_call_id, event_id, event_type, ts, job_id, run_id,
        res ->> 'skillName' AS skill_name, res ->> 'toolName' AS tool_name,
        TRY_CAST(json_extract(res, '$.isError') AS BOOLEAN) AS flagged,
        json_extract_string(res, '$.result[0].text') AS result_text,
        json_extract(res, '$.result')::VARCHAR AS result, user_name
    FROM results
    UNION ALL
    SELECT
        part ->> 'toolCallId', event_id, event_type, ts, job_id, run_id,
        NULL, part ->> 'toolName',
        TRY_CAST(json_extract(part, '$.isError') AS BOOLEAN),
        json_extract_string(part, '$.contents[0].text'),
        json_extract(part, '$.contents')::VARCHAR, user_name
    FROM parts
    WHERE part ->> 'type' = 'toolResultPart'
)
SELECT
    tool_call_id, event_id, event_type, ts, job_id, run_id, skill_name, tool_name,
    coalesce(flagged, FALSE)
        OR coalesce(starts_with(result_text, 'Error'), FALSE)
        OR coalesce(
            CASE WHEN json_valid(result_text) AND json_type(result_text) = 'OBJECT'
                THEN json_exists(result_text, '$.error') END,
            FALSE
        ) AS is_error,
    result_text, result, user_name
FROM sightings
WHERE tool_call_id IS NOT NULL
