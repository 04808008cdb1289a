{#- Use a model's custom schema as is (staging, marts) rather than dbt's default
    "<target schema>_<custom schema>": the analyst shell and the docs name them plainly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name is not none else target.schema }}
{%- endmacro %}
