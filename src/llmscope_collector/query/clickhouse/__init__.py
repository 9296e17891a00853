"""ClickHouse as the query engine: tables fed from the stored Parquet objects, the API's queries in ClickHouse SQL.

`client` reaches a server over HTTP (`clickhouse-connect`) or the embedded engine (`chdb`); `sql` holds every
statement (constant text, `{name:Type}` parameters, column lists derived from `storage.schema`); `loader`
feeds the tables from a data dir or a bucket, once per object; `store` answers the `QueryBackend` calls.
"""
