-- Cross-exchange spread per symbol (BASE/QUOTE), UTC day, candle period and pair of exchanges: the
-- relative difference of closes of candles that open at the same time on both exchanges, in basis points.
with candles as (

    select * from {{ ref('stg_market__ohlc') }}

),

matched as (

    select
        a.symbol,
        a.trade_date,
        a.period_seconds,
        a.exchange as exchange_a,
        b.exchange as exchange_b,
        cast(a.close_price as double) as close_a,
        cast(b.close_price as double) as close_b
    from candles as a
    inner join candles as b
        on a.symbol = b.symbol
        and a.period_seconds = b.period_seconds
        and a.opened_at = b.opened_at
        and a.exchange < b.exchange

),

spreads as (

    select
        *,
        (close_a - close_b) / ((close_a + close_b) / 2) * 10000 as spread_bps
    from matched

)

select
    symbol,
    trade_date,
    period_seconds,
    exchange_a,
    exchange_b,
    count(*) as matched_candles,
    avg(spread_bps) as mean_spread_bps,
    avg(abs(spread_bps)) as mean_abs_spread_bps,
    max(abs(spread_bps)) as max_abs_spread_bps,
    count_if(spread_bps > 0) as candles_a_above_b

from spreads
group by symbol, trade_date, period_seconds, exchange_a, exchange_b
