-- Data quality per dataset, ticker, period and UTC day: rows, duplicate keys, rows breaking a validity
-- rule, and for candles the ones missing inside the span the day's candles cover. A report: the asset
-- checks decide what fails; this mart only counts.
with candles as (

    select * from {{ ref('stg_market__ohlc') }}

),

trades as (

    select * from {{ ref('stg_market__trades') }}

),

candle_quality as (

    select
        'ohlc' as dataset,
        ticker,
        period_seconds,
        trade_date,
        count(*) as row_count,
        count(*) - count(distinct opened_at) as duplicate_rows,
        count_if(
            high_price < greatest(open_price, close_price)
            or low_price > least(open_price, close_price)
            or base_volume < 0
        ) as invalid_rows,
        cast((epoch(max(opened_at)) - epoch(min(opened_at))) // period_seconds + 1 as bigint) as expected_rows,
        min(opened_at) as first_at,
        max(opened_at) as last_at
    from candles
    group by ticker, period_seconds, trade_date

),

trade_quality as (

    select
        'trades' as dataset,
        ticker,
        0 as period_seconds,
        trade_date,
        count(*) as row_count,
        count(*) - count(distinct trade_id) as duplicate_rows,
        count_if(price <= 0 or base_size < 0) as invalid_rows,
        cast(null as bigint) as expected_rows,
        min(traded_at) as first_at,
        max(traded_at) as last_at
    from trades
    group by ticker, trade_date

),

unioned as (

    select * from candle_quality
    union all
    select * from trade_quality

)

select
    dataset,
    ticker,
    period_seconds,
    trade_date,
    row_count,
    duplicate_rows,
    invalid_rows,
    expected_rows,
    expected_rows - (row_count - duplicate_rows) as missing_rows,
    first_at,
    last_at

from unioned
