-- Tokens and cost per user, Expert and day (USD, from the prices table; cached input at its own price).
WITH usage AS (
    SELECT
        g.user_name, g.expert_key, g.day, r.model,
        sum(g.input_tokens)::BIGINT AS input_tokens,
        sum(g.cached_input_tokens)::BIGINT AS cached_input_tokens,
        sum(g.output_tokens)::BIGINT AS output_tokens,
        sum(g.reasoning_tokens)::BIGINT AS reasoning_tokens,
        sum(g.total_tokens)::BIGINT AS total_tokens
    FROM generations AS g
    LEFT JOIN runs AS r USING (run_id)
    GROUP BY ALL
),
priced AS (
    SELECT
        u.*,
        (SELECT p FROM prices AS p WHERE starts_with(u.model, p.model)
         ORDER BY length(p.model) DESC LIMIT 1) AS price
    FROM usage AS u
)
SELECT
    user_name, expert_key, day, model,
    input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, total_tokens,
    round((
        (coalesce(input_tokens, 0) - coalesce(cached_input_tokens, 0))
            * price.input_usd_per_mtok
        + coalesce(cached_input_tokens, 0) * price.cached_input_usd_per_mtok
        + coalesce(output_tokens, 0) * price.output_usd_per_mtok
    ) / 1e6, 6) AS cost_usd
FROM priced
ORDER BY day, user_name, expert_key, model
