-- The candles every daily mart is built from: for each ticker and UTC day, only the finest period
-- stored that day (1-minute candles when there are some), so a day is never counted twice.
with candles as (

    select * from {{ ref('stg_market__ohlc') }}

),

ranked as (

    select
        *,
        min(period_seconds) over (partition by ticker, trade_date) as finest_period_seconds
    from candles

)

select * exclude (finest_period_seconds)
from ranked
where period_seconds = finest_period_seconds
