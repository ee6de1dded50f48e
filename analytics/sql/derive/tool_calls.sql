-- One row per tool call requested by the model (callTools, callDelegate, callInteractiveTool).
WITH calls AS (
    SELECT
        event_id, type AS event_type, ts, job_id, run_id, expert_key, step_number, user_name,
        unnest(
            CASE WHEN type = 'callInteractiveTool'
                THEN [json_extract(raw, '$.toolCall')]
                ELSE json_extract(raw, '$.toolCalls[*]')
            END
        ) AS call
    FROM batch_events
    WHERE type IN ('callTools', 'callDelegate', 'callInteractiveTool')
)
SELECT
    call ->> 'id' AS tool_call_id, event_id, event_type, ts, job_id, run_id, expert_key,
    step_number, call ->> 'skillName' AS skill_name, call ->> 'toolName' AS tool_name,
    json_extract(call, '$.args')::VARCHAR AS args, user_name
FROM calls
WHERE call ->> 'id' IS NOT NULL
