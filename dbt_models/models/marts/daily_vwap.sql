-- Volume-weighted average price per ticker and UTC day, once from the stored trades (vwap_source = trades)
-- and once from the finest candles' quote / base volume (candles): they may cover different parts of the
-- day, so both are kept rather than one silently preferred. Double precision: an average, not a ledger.
with trades as (

    select * from {{ ref('stg_market__trades') }}

),

candles as (

    select * from {{ ref('int_market__candles_finest') }}

),

from_trades as (

    select
        ticker,
        exchange,
        symbol,
        trade_date,
        sum(cast(price as double) * cast(base_size as double)) / sum(cast(base_size as double)) as vwap,
        min(price) as low_price,
        max(price) as high_price,
        sum(base_size) as base_volume,
        count(*) as observation_count,
        'trades' as vwap_source
    from trades
    group by ticker, exchange, symbol, trade_date
    having sum(base_size) > 0

),

from_candles as (

    select
        ticker,
        exchange,
        symbol,
        trade_date,
        sum(cast(quote_volume as double)) / sum(cast(base_volume as double)) as vwap,
        min(low_price) as low_price,
        max(high_price) as high_price,
        sum(base_volume) as base_volume,
        count(*) as observation_count,
        'candles' as vwap_source
    from candles
    group by ticker, exchange, symbol, trade_date
    having sum(base_volume) > 0 and count(quote_volume) = count(*)

)

select * from from_trades

union all

select * from from_candles
