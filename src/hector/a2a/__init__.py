"""The A2A transport: the only code that knows A2A's wire types (a2a-sdk protobuf messages)."""
