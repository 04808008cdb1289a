-- One OHLCV bar per ticker and UTC day, rolled up from that day's finest candles.
with candles as (

    select * from {{ ref('int_market__candles_finest') }}

)

select
    ticker,
    exchange,
    symbol,
    trade_date,
    period_seconds as source_period_seconds,
    arg_min(open_price, opened_at) as open_price,
    max(high_price) as high_price,
    min(low_price) as low_price,
    arg_max(close_price, opened_at) as close_price,
    sum(base_volume) as base_volume,
    sum(quote_volume) as quote_volume,
    sum(trade_count) as trade_count,
    count(*) as candle_count,
    min(opened_at) as first_opened_at,
    max(opened_at) as last_opened_at

from candles
group by ticker, exchange, symbol, trade_date, period_seconds
