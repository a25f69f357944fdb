"""The service's own state in the adapter's database: the clinic's records (records.py) and API tokens (tokens.py).

Same database as the sync outbox and the audit trail (``Settings.database_url``); tables are created on first use.
"""
