{#- No rows share the same values in all of `combination_of_columns` (a compound key).
    Written here because `dbt deps` cannot reach the hub for dbt_utils offline. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
