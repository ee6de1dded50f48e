-- Time to the first LLM call per run: from the run's start, and from the runtime's start (skills included).
SELECT
    run_id,
    expert_key,
    user_name,
    started_at,
    ms_to_first_llm_call,
    ms_from_runtime_start_to_first_llm_call
FROM runs
WHERE first_generation_at IS NOT NULL
ORDER BY ms_to_first_llm_call DESC, run_id
