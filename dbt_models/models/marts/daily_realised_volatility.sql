-- Realised volatility per ticker and UTC day: sqrt of the sum of squared close-to-close log returns of
-- the day's finest candles. A day's first return is from the previous stored candle (markets trade 24/7).
with candles as (

    select * from {{ ref('int_market__candles_finest') }}

),

returns as (

    select
        ticker,
        exchange,
        symbol,
        trade_date,
        period_seconds,
        ln(cast(close_price as double) / cast(lag(close_price) over by_time as double)) as log_return
    from candles
    window by_time as (partition by ticker, period_seconds order by opened_at)

)

select
    ticker,
    exchange,
    symbol,
    trade_date,
    period_seconds as source_period_seconds,
    count(log_return) as return_count,
    sqrt(sum(log_return * log_return)) as realised_volatility,
    sqrt(sum(log_return * log_return)) * sqrt(365) as annualised_volatility

from returns
group by ticker, exchange, symbol, trade_date, period_seconds
having count(log_return) > 0
