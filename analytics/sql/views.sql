-- The catalog: views over the Parquet dataset. @name@ stands for a read_parquet(...) of
-- that table's files. Rebuilt at every ingest; nothing here holds data except the prices
-- table. The *_live views compute from the events at query time; the views without the
-- suffix (runs, generations, tool_calls) read their snapshot, written at every ingest.
-- Where the events of one run or job disagree (a run ingested under two user labels), a
-- view picks the smallest value or the first event's: any_value could pick another at
-- every query, and a snapshot would then never match its live view.

CREATE OR REPLACE VIEW events AS SELECT * FROM @events@;
CREATE OR REPLACE VIEW messages AS SELECT * FROM @messages@;
CREATE OR REPLACE VIEW tool_results AS SELECT * FROM @tool_results@;
CREATE OR REPLACE VIEW checkpoint_versions AS SELECT * FROM @checkpoints@;

-- Lines that could not be read. A stream's last line that is not valid JSON and has no
-- newline may be an event still being written (its reason begins as sources.UNTERMINATED
-- says); once the grown file is read again and that line ingested whole (the quarantined
-- text a strict prefix of the event's, but for the U+FFFD standing for the bytes of a
-- character cut in two), its row is no longer shown. Nor is it once the event its text
-- names by a whole "id" is stored from elsewhere (the run's event file): the line then
-- adds nothing, as a copy, and nothing of it is lost. Only those rows are joined to the
-- events, which read just the row groups that can hold their lines or ids.
-- TODO(#7): a line cut before its "id" whose event is stored from elsewhere stays: once
-- whole it is dropped as a copy, so nothing is stored at its line either.
CREATE OR REPLACE VIEW quarantine AS
WITH unfinished AS (
    SELECT source_file, line_number, raw_hash, raw,
        regexp_extract(raw, '"id"\s*:\s*"([^"\\]+)"', 1) AS named_id
    FROM @quarantine@
    WHERE starts_with(reason, 'last line without a newline')
),
completed AS (
    SELECT q.source_file, q.line_number, q.raw_hash
    FROM unfinished AS q
    JOIN events AS e ON e.source_file = q.source_file AND e.source_line = q.line_number
    WHERE length(e.raw) > length(rtrim(q.raw, chr(65533)))
      AND starts_with(e.raw, rtrim(q.raw, chr(65533)))
    UNION
    SELECT q.source_file, q.line_number, q.raw_hash
    FROM unfinished AS q
    SEMI JOIN events AS e ON e.event_id = q.named_id
)
SELECT q.* FROM @quarantine@ AS q
ANTI JOIN completed AS c
    ON q.source_file = c.source_file AND q.line_number = c.line_number
   AND q.raw_hash = c.raw_hash;

-- Each checkpoint as last seen: most messages, then furthest step, files before events.
CREATE OR REPLACE VIEW checkpoints AS
SELECT * EXCLUDE (rank_) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY checkpoint_id
        ORDER BY len(message_ids) DESC, step_number DESC, (status = 'init'),
                 (seen_in = 'file') DESC, version_hash
    ) AS rank_
    FROM @checkpoints@
) WHERE rank_ = 1;

CREATE OR REPLACE VIEW run_settings AS
SELECT * EXCLUDE (rank_) FROM (
    SELECT *, row_number() OVER (
        PARTITION BY run_id ORDER BY updated_at DESC NULLS LAST, version_hash
    ) AS rank_
    FROM @run_settings@
) WHERE rank_ = 1;

-- One row per tool call, joined to its first result: ok, error or pending, and duration.
-- A tool call id is unique within its job only.
CREATE OR REPLACE VIEW tool_calls_live AS
WITH r AS (
    SELECT
        job_id,
        tool_call_id,
        min(ts) AS result_ts,
        bool_or(is_error) AS is_error,
        arg_min(result_text, ts) AS result_text,
        arg_min(result, ts) AS result
    FROM @tool_results@
    GROUP BY job_id, tool_call_id
)
SELECT
    c.tool_call_id, c.ts AS called_at, c.job_id, c.run_id, c.expert_key, c.step_number,
    c.skill_name, c.tool_name, c.event_type AS call_event, c.args, c.user_name, c.day,
    r.result_ts AS result_at,
    CASE WHEN r.tool_call_id IS NULL THEN 'pending'
         WHEN r.is_error THEN 'error' ELSE 'ok' END AS outcome,
    date_diff('millisecond', c.ts, r.result_ts) AS duration_ms,
    r.result_text, r.result
FROM @tool_calls@ AS c
LEFT JOIN r ON r.job_id IS NOT DISTINCT FROM c.job_id AND r.tool_call_id = c.tool_call_id;

-- Token sums are cast back to BIGINT: DuckDB sums BIGINT into HUGEINT, which a snapshot's
-- Parquet file stores as DOUBLE (inexact past 2^53, printed as 9.0e+09).

-- The events that carry one generation's usage, each generation once. The reference
-- emits callTools and then callDelegate (or callInteractiveTool) with the same usage for
-- one generation; the second is not counted again.
CREATE OR REPLACE VIEW usage_events AS
WITH tool_steps AS (
    SELECT DISTINCT run_id, step_number FROM @events@ WHERE type = 'callTools'
)
SELECT
    e.job_id, e.run_id, e.expert_key, e.user_name, e.step_number, e.ts, e.day, e.type,
    e.input_tokens, e.output_tokens, e.reasoning_tokens, e.cached_input_tokens,
    e.total_tokens
FROM @events@ AS e
WHERE e.type IN ('callTools', 'retry', 'completeRun')
    OR (e.type IN ('callDelegate', 'callInteractiveTool')
        AND NOT EXISTS (SELECT 1 FROM tool_steps AS t
                        WHERE t.run_id = e.run_id AND t.step_number = e.step_number));

-- One row per step of a run: when its generation started, how long until the model's
-- answer arrived, retries, and the tokens of every generation in the step.
CREATE OR REPLACE VIEW generations_live AS
WITH steps AS (
SELECT
    job_id, run_id, step_number,
    min(expert_key) AS expert_key,
    min(user_name) AS user_name,
    min(day) AS day,
    min(ts) FILTER (WHERE type = 'startGeneration') AS started_at,
    min(ts) FILTER (WHERE type IN ('callTools', 'callDelegate', 'callInteractiveTool',
                                   'completeRun', 'retry', 'stopRunByError')) AS answered_at,
    date_diff('millisecond', started_at, answered_at) AS latency_ms,
    count(*) FILTER (WHERE type = 'startGeneration') AS generation_starts,
    count(*) FILTER (WHERE type = 'retry') AS retries,
    min(step_started_at) AS step_started_at,
    max(step_finished_at) AS step_finished_at,
    date_diff('millisecond', min(step_started_at), max(step_finished_at)) AS step_ms
FROM @events@
WHERE step_number IS NOT NULL AND run_id IS NOT NULL
GROUP BY job_id, run_id, step_number
),
step_usage AS (
    SELECT
        run_id, step_number,
        sum(input_tokens)::BIGINT AS input_tokens,
        sum(output_tokens)::BIGINT AS output_tokens,
        sum(reasoning_tokens)::BIGINT AS reasoning_tokens,
        sum(cached_input_tokens)::BIGINT AS cached_input_tokens,
        sum(total_tokens)::BIGINT AS total_tokens
    FROM usage_events
    GROUP BY run_id, step_number
)
SELECT s.*, u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens,
    u.total_tokens
FROM steps AS s
LEFT JOIN step_usage AS u USING (run_id, step_number);

-- One row per run: outcome (how its last stop event ended it, else 'unfinished'),
-- steps, tokens, errors, and the time from its start to its first LLM call. A run is a
-- run id of a run event (those carry expertKey) or of a run-setting file; the runtime's
-- own events (initializeRuntime, skills, containers) and checkpoints (delegatedBy) only
-- mention run ids, and a run id nothing else names is not a run.
CREATE OR REPLACE VIEW runs_live AS
WITH run_ids AS (
    SELECT run_id FROM @events@ WHERE run_id IS NOT NULL AND expert_key IS NOT NULL
    UNION
    SELECT run_id FROM run_settings
),
per_run AS (
    SELECT
        run_id,
        min(job_id) AS job_id,
        min(expert_key) AS expert_key,
        min(user_name) AS user_name,
        min(ts) AS first_event_at,
        max(ts) AS last_event_at,
        min(ts) FILTER (WHERE type = 'initializeRuntime') AS runtime_started_at,
        min(ts) FILTER (WHERE type = 'startRun') AS run_started_at,
        min(ts) FILTER (WHERE type = 'startGeneration') AS first_generation_at,
        max(step_number) AS steps,
        arg_max(type, ts) FILTER (WHERE type IN (
            'completeRun', 'stopRunByError', 'stopRunByExceededMaxSteps',
            'stopRunByDelegate', 'stopRunByInteractiveTool')) AS stop_event,
        max(ts) FILTER (WHERE type IN (
            'completeRun', 'stopRunByError', 'stopRunByExceededMaxSteps',
            'stopRunByDelegate', 'stopRunByInteractiveTool')) AS finished_at,
        arg_max(coalesce(error_name, checkpoint_error_name), ts)
            FILTER (WHERE type = 'stopRunByError') AS error_name,
        arg_max(coalesce(error_message, checkpoint_error_message), ts)
            FILTER (WHERE type = 'stopRunByError') AS error_message,
        count(*) FILTER (WHERE type = 'retry') AS retries,
        arg_max(reason, ts) FILTER (WHERE type = 'retry') AS last_retry_reason,
        min(day) AS day,
        count(*) AS events
    FROM @events@
    WHERE run_id IN (SELECT run_id FROM run_ids)
    GROUP BY run_id
),
run_usage AS (
    SELECT
        run_id,
        sum(input_tokens)::BIGINT AS input_tokens,
        sum(output_tokens)::BIGINT AS output_tokens,
        sum(reasoning_tokens)::BIGINT AS reasoning_tokens,
        sum(cached_input_tokens)::BIGINT AS cached_input_tokens,
        sum(total_tokens)::BIGINT AS total_tokens
    FROM usage_events
    GROUP BY run_id
),
job_runtime AS (
    SELECT job_id, arg_min(model, ts) AS model, arg_min(max_steps, ts) AS max_steps
    FROM @events@
    WHERE type = 'initializeRuntime'
    GROUP BY job_id
)
SELECT
    k.run_id, coalesce(p.job_id, s.job_id) AS job_id,
    coalesce(p.expert_key, s.expert_key) AS expert_key,
    coalesce(p.user_name, s.user_name) AS user_name,
    CASE p.stop_event
        WHEN 'completeRun' THEN 'completed'
        WHEN 'stopRunByError' THEN 'stoppedByError'
        WHEN 'stopRunByExceededMaxSteps' THEN 'stoppedByExceededMaxSteps'
        WHEN 'stopRunByDelegate' THEN 'stoppedByDelegate'
        WHEN 'stopRunByInteractiveTool' THEN 'stoppedByInteractiveTool'
        ELSE 'unfinished'
    END AS outcome,
    coalesce(s.model, j.model) AS model,
    coalesce(s.max_steps, j.max_steps) AS max_steps,
    coalesce(p.day, s.started_at::DATE) AS day, p.steps, coalesce(p.retries, 0) AS retries,
    p.last_retry_reason, p.error_name, p.error_message,
    coalesce(p.run_started_at, p.first_event_at, s.started_at) AS started_at,
    p.finished_at, p.last_event_at,
    date_diff('millisecond', coalesce(p.run_started_at, p.first_event_at), p.finished_at)
        AS duration_ms,
    p.first_generation_at,
    date_diff('millisecond', coalesce(p.run_started_at, p.first_event_at),
              p.first_generation_at) AS ms_to_first_llm_call,
    date_diff('millisecond', p.runtime_started_at, p.first_generation_at)
        AS ms_from_runtime_start_to_first_llm_call,
    u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens,
    u.total_tokens, coalesce(p.events, 0) AS events
FROM run_ids AS k
LEFT JOIN per_run AS p USING (run_id)
LEFT JOIN run_settings AS s USING (run_id)
LEFT JOIN run_usage AS u USING (run_id)
LEFT JOIN job_runtime AS j ON j.job_id = coalesce(p.job_id, s.job_id);

-- One row per job: job.json when the runtime wrote one (ours does, the reference does
-- not), completed by what the events say.
CREATE OR REPLACE VIEW jobs AS
WITH latest AS (
    SELECT * EXCLUDE (rank_) FROM (
        SELECT *, row_number() OVER (
            PARTITION BY job_id
            ORDER BY finished_at DESC NULLS LAST, total_steps DESC NULLS LAST,
                     (status = 'running'), version_hash
        ) AS rank_
        FROM @jobs@
    ) WHERE rank_ = 1
),
from_events AS (
    SELECT
        job_id,
        min(user_name) AS user_name,
        arg_min(expert_name, ts) FILTER (WHERE type = 'initializeRuntime') AS expert_name,
        arg_min(model, ts) FILTER (WHERE type = 'initializeRuntime') AS model,
        min(ts) AS first_event_at,
        max(ts) AS last_event_at,
        arg_max(type, ts) FILTER (WHERE type IN (
            'completeRun', 'stopRunByError', 'stopRunByExceededMaxSteps',
            'stopRunByDelegate', 'stopRunByInteractiveTool')) AS last_stop_event
    FROM @events@
    GROUP BY job_id
),
job_usage AS (
    SELECT job_id, sum(total_tokens)::BIGINT AS total_tokens FROM usage_events GROUP BY job_id
),
-- Runs as runs_live counts them: run events and run-setting files.
job_runs AS (
    SELECT job_id, count(DISTINCT run_id) AS runs FROM (
        SELECT job_id, run_id FROM @events@
        WHERE run_id IS NOT NULL AND expert_key IS NOT NULL
        UNION
        SELECT job_id, run_id FROM run_settings
    )
    GROUP BY job_id
)
SELECT
    job_id,
    coalesce(l.status, CASE e.last_stop_event
        WHEN 'completeRun' THEN 'completed'
        WHEN 'stopRunByError' THEN 'stoppedByError'
        WHEN 'stopRunByExceededMaxSteps' THEN 'stoppedByMaxSteps'
        WHEN 'stopRunByInteractiveTool' THEN 'stoppedByInteractiveTool'
        ELSE 'running' END) AS status,
    coalesce(l.coordinator_expert_key, e.expert_name) AS coordinator_expert_key,
    e.model, coalesce(l.user_name, e.user_name) AS user_name,
    coalesce(l.started_at, e.first_event_at) AS started_at,
    coalesce(l.finished_at, e.last_event_at) AS finished_at,
    l.total_steps, l.max_steps, coalesce(r.runs, 0) AS runs,
    coalesce(l.total_tokens, u.total_tokens) AS total_tokens,
    l.input_tokens, l.output_tokens, l.cached_input_tokens
FROM latest AS l
FULL OUTER JOIN from_events AS e USING (job_id)
LEFT JOIN job_usage AS u USING (job_id)
LEFT JOIN job_runs AS r USING (job_id);
