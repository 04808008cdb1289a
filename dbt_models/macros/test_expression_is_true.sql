{#- Every row satisfies `expression` (a SQL boolean over the model's columns); NULL counts as a failure.
    Under a column, `column_name` is passed too and ignored: the expression names its columns itself.
    Written here because `dbt deps` cannot reach the hub for dbt_utils offline. -#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
