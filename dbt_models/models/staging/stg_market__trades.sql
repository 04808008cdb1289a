-- Trades renamed and cast, one row per (ticker, trade id); nothing filtered or aggregated.
with source as (

    select * from {{ source('market', 'trades') }}

),

renamed as (

    select
        ticker,
        exchange,
        split_part(ticker, ':', 2) as symbol,
        trade_id,
        first_trade_id,
        last_trade_id,
        price,
        size as base_size,
        buyer_is_maker,
        exchange_time_ns,
        trade_time as traded_at,
        cast(timezone('UTC', trade_time) as date) as trade_date,
        receive_time as received_at,
        source as ingest_source,
        request_id,
        batch_id,
        kafka_topic,
        kafka_partition,
        kafka_offset

    from source

)

select * from renamed
