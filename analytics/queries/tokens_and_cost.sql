-- Tokens and cost per user, Expert and day (USD, from the prices table; cached input at its own price).
WITH usage AS (
    SELECT
        e.user_name, e.expert_key, e.day, e.job_id,
        sum(e.input_tokens) AS input_tokens,
        sum(e.cached_input_tokens) AS cached_input_tokens,
        sum(e.output_tokens) AS output_tokens,
        sum(e.reasoning_tokens) AS reasoning_tokens,
        sum(e.total_tokens) AS total_tokens
    FROM usage_events AS e
    GROUP BY ALL
),
job_model AS (
    SELECT job_id, any_value(model) AS model
    FROM events
    WHERE type = 'initializeRuntime'
    GROUP BY job_id
),
priced AS (
    SELECT
        u.*, m.model,
        (SELECT p FROM prices AS p WHERE m.model LIKE p.model || '%'
         ORDER BY length(p.model) DESC LIMIT 1) AS price
    FROM usage AS u
    LEFT JOIN job_model AS m USING (job_id)
)
SELECT
    user_name, expert_key, day, model,
    sum(input_tokens) AS input_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(total_tokens) AS total_tokens,
    round(sum(
        (coalesce(input_tokens, 0) - coalesce(cached_input_tokens, 0))
            * price.input_usd_per_mtok
        + coalesce(cached_input_tokens, 0) * price.cached_input_usd_per_mtok
        + coalesce(output_tokens, 0) * price.output_usd_per_mtok
    ) / 1e6, 6) AS cost_usd
FROM priced
GROUP BY user_name, expert_key, day, model
ORDER BY day, user_name, expert_key, model
