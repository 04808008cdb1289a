-- Candles renamed and cast, one row per (ticker, period, open time); nothing filtered or aggregated.
with source as (

    select * from {{ source('market', 'ohlc') }}

),

renamed as (

    select
        ticker,
        exchange,
        split_part(ticker, ':', 2) as symbol,
        split_part(split_part(ticker, ':', 2), '/', 1) as base_asset,
        split_part(split_part(ticker, ':', 2), '/', 2) as quote_asset,
        period_seconds,
        open_time as opened_at,
        cast(timezone('UTC', open_time) as date) as trade_date,
        open as open_price,
        high as high_price,
        low as low_price,
        close as close_price,
        volume as base_volume,
        quote_volume,
        taker_buy_volume as taker_buy_base_volume,
        taker_buy_quote_volume,
        trade_count,
        source as ingest_source,
        request_id,
        batch_id,
        ingested_at,
        kafka_topic,
        kafka_partition,
        kafka_offset

    from source

)

select * from renamed
