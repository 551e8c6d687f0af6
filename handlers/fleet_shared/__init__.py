"""fleet_shared: the shared layer of the lambda-fleet functions (at /opt/python in Lambda).

Import the module you need; importing the package itself loads nothing, because cold starts of
every function pay for what this file imports. Always import it as `fleet_shared` (never as
`handlers.fleet_shared`): that is its name in Lambda, and a second name would give a second copy
of every class, so `except FleetError` would miss errors raised through the other copy.

- `exceptions`: `FleetError` and the errors a handler turns into results.
- `clock`: the `Clock` protocol, `SystemClock` and `ManualClock` (tests and replays).
- `field_types`: pydantic field types shared by the models (account ids, ARNs, flags...).
- `validation_errors`: renders a pydantic error as one field path and one problem.
- `environment`: the function's environment variables as one frozen, validated model.
- `sessions`: boto3 sessions and clients per (account, region), assuming the member role.
- `observability`: Powertools Logger, Metrics (Tracer in detailed tracing), once per function.
- `event_parsing`: validates an event into a model; the standard error result.
- `http_api`: API Gateway HTTP API (payload v2) events told apart, their bodies and responses.
- `http_api_event`: the HTTP API (payload v2) event model, imported when a request comes.
- `alerts`: the fleet alert model and its publisher to the severity's SNS topic.
- `state_table`: locks, idempotency, cooldowns, saved values and dedup in DynamoDB.
- `inventory`: the fleet inventory models (pure pydantic), shared with the Pulumi program.
- `inventory_store`: `load_inventory`, reading the inventory from the data bucket (ETag cache).
"""
